//! `--busy`: the load a learner's machine has beside a lesson.
//!
//! Two threads of the runner spin on arithmetic for as long as the lessons
//! run: two CPU-bound programs, as far as the scheduler can tell (a browser
//! tab and a compiler). They are threads of this process, so nothing can
//! outlive the runner: they stop when it exits, Ctrl-C included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// How many CPU-bound spinners `--busy` runs.
pub const SPINNERS: usize = 2;

/// The spinning threads; dropping it stops and joins them.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..SPINNERS)
            .filter_map(|index| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name(format!("busy-{index}"))
                    .spawn(move || {
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..10_000 {
                                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                            }
                        }
                    })
                    .ok()
            })
            .collect::<Vec<_>>();
        eprintln!("--busy: {} CPU-bound threads spin beside the lessons", threads.len());
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
