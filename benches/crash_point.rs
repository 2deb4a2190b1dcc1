//! `cargo bench --bench crash_point`: what the crash points compiled into the shipped
//! binary (the default `failpoints` feature, so that `berth chaos` can reach them) cost
//! an agent that does not arm them, beside a call that does nothing, measured in the
//! same run.
//!
//! - baseline: an opaque call that does nothing, as many times.
//! - unarmed crash point: `crash_point::hit` on a name no `FAILPOINTS` arms, as the agent
//!   does at each record and each Docker action of a launch.
//!
//! A launch passes about 30 crash points (two per recorded phase, two per Docker action
//! of the agent); the table gives what that costs per launch. `BERTH_BENCH_HITS` chooses
//! the number of calls per round (default 2,000,000) and `BERTH_BENCH_ROUNDS` the rounds
//! (default 5); each row reports its median.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[inline(never)]
fn nothing(name: &str) {
    black_box(name);
}

fn per_call(hits: u32, rounds: usize, call: impl Fn(&str)) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..hits {
                call(black_box("record-Running-before"));
            }
            started.elapsed() / hits
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let _armed = berth::crash_point::arm_from_env();
    let hits = u32::try_from(env("BERTH_BENCH_HITS", 2_000_000)).unwrap_or(u32::MAX);
    let rounds = usize::try_from(env("BERTH_BENCH_ROUNDS", 5))
        .unwrap_or(5)
        .max(1);
    let compiled = !berth::crash_point::POINTS.is_empty();
    let baseline = per_call(hits, rounds, nothing);
    let crash_point = per_call(hits, rounds, berth::crash_point::hit);
    let ratio = crash_point.as_secs_f64() / baseline.as_secs_f64().max(1e-12);
    println!(
        "crash points compiled in: {compiled}; {hits} calls per round, median of {rounds} rounds"
    );
    println!("| row | ns per call | ratio | per launch (30 calls) |");
    println!("|---|---|---|---|");
    for (name, time, ratio) in [
        ("baseline: a call that does nothing", baseline, 1.0),
        ("unarmed crash point", crash_point, ratio),
    ] {
        println!(
            "| {name} | {:.1} | {ratio:.1}x | {:.2} µs |",
            time.as_secs_f64() * 1e9,
            time.as_secs_f64() * 30.0 * 1e6
        );
    }
}
