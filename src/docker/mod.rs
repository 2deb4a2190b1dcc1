//! The Docker CLI adapter: the only module that spawns `docker`.
