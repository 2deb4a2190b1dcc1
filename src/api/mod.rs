//! berth's HTTP/JSON API over a unix socket: the wire types, the server and the client. The server
//! side only turns requests into agent actions; it never calls Docker itself.

pub mod client;
pub mod events;
pub mod server;
pub mod updates;
pub mod wire;
