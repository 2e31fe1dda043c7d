//! Plays kubelet for `scripts/bench enter`: runs pod NAMESPACE/PREFIX-PID-N with one container
//! `app` on the CRI containerd of scripts/cri-containerd, prints `NAMESPACE/NAME SANDBOX_PID`,
//! and removes the pod when its standard input closes.
//!
//!     cri-pod NAMESPACE PREFIX

use std::io::Read;

use nsdebug_tests::CriPod;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [namespace, prefix] = args.as_slice() else {
        eprintln!("usage: cri-pod NAMESPACE PREFIX");
        std::process::exit(2);
    };
    let pod = CriPod::start(namespace, prefix, &["app"], &[]);
    println!("{} {}", pod.spec(), pod.sandbox_pid());
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}
