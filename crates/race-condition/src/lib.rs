//! Why the Python notes' racy counter is not a Rust program.
//!
//! The lesson itself is the binary (`src/main.rs`); this library holds only
//! the example below, because the compiler checks examples in a library's
//! documentation (`cargo test --doc`), and this one must keep failing.
//!
//! The Python notes start five threads that each run `counter += 1` ten
//! thousand times on one global integer. Written the same way in Rust, with
//! scoped threads that all borrow one plain `u64`, it is rejected:
//!
//! ```compile_fail,E0499
//! let mut counter: u64 = 0;
//! std::thread::scope(|scope| {
//!     for _ in 0..5 {
//!         // error[E0499]: cannot borrow `counter` as mutable more than once at a time
//!         scope.spawn(|| {
//!             for _ in 0..10_000 {
//!                 counter += 1;
//!             }
//!         });
//!     }
//! });
//! println!("{counter}");
//! ```
//!
//! Five threads each holding `&mut counter` at the same time is exactly a data
//! race, and `&mut` means "nobody else has access", so the borrow checker
//! refuses the second borrow. The same goes for a global: a `static` cannot be
//! assigned without `unsafe`, and `static mut` is undefined behaviour when
//! threads race on it, which is why no lesson here uses it.
//!
//! With one thread the borrow is fine, which shows the error is about sharing:
//!
//! ```
//! let mut counter: u64 = 0;
//! std::thread::scope(|scope| {
//!     scope.spawn(|| {
//!         for _ in 0..10_000 {
//!             counter += 1;
//!         }
//!     });
//! });
//! assert_eq!(counter, 10_000);
//! ```
//!
//! Safe Rust turns the data race into a compile error; what it cannot catch is
//! a race of logic between atomic steps, which the binary measures.
