//! Benchmark driver for `scripts/bench guard`: enter + restore cycles of a target's net
//! namespace, printing microseconds per cycle for each way of doing it.
//!
//!     bench-guard PID CYCLES

use std::time::Instant;

use nsenter_core::{Namespace, NsGuard, Pid, Target, ThreadNamespaces};

fn per_cycle(cycles: u32, mut cycle: impl FnMut()) -> f64 {
    // Warm up caches and the kernel's paths first.
    for _ in 0..cycles / 10 {
        cycle();
    }
    let start = Instant::now();
    for _ in 0..cycles {
        cycle();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(cycles)
}

fn main() -> Result<(), nsenter_core::Error> {
    let mut args = std::env::args().skip(1);
    let pid = Pid::try_from(args.next().and_then(|a| a.parse().ok()).unwrap_or(0))?;
    let cycles: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let net = Namespace::Net.into();

    let target = Target::open(pid)?;
    let mut home = ThreadNamespaces::save(net)?;
    let reused = per_cycle(cycles, || drop(home.enter(&target).expect("enter")));

    let cold = per_cycle(cycles, || {
        let target = Target::open(pid).expect("open");
        drop(NsGuard::enter(&target, net).expect("enter"));
    });
    println!("rust_reused_us {reused:.3}");
    println!("rust_cold_us {cold:.3}");
    Ok(())
}
