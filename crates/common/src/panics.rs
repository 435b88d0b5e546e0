//! Panics a lab causes on purpose: a thread that panics to show what `join`
//! returns, or a task that panics holding a permit. Their messages would
//! land in the middle of the report, so the lab runs them [`quietly`].

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// The text a panic carried: `panic!("literal")` carries a `&str`,
/// `panic!("{formatted}")` a `String`; anything else is named as such.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic that carried no text".to_string()
    }
}

/// Runs `f` with the panic hook silenced and catches a panic of its own
/// (its message is the `Err`): for a thread that panics on purpose (whose
/// panic the hook would print from that thread while `f` joins it) and for
/// `thread::spawn`, which panics when a thread cannot start. The hook that
/// was there before is put back before this returns, panic or not.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
    outcome.map_err(|payload| message(&*payload))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn quietly_catches_a_panic_and_puts_the_hook_back() {
        // A hook that counts the panics saying "after"; quietly must leave it in place.
        static COUNTED: AtomicUsize = AtomicUsize::new(0);
        let before = panic::take_hook();
        panic::set_hook(Box::new(|info| {
            if info.payload().downcast_ref::<&str>() == Some(&"after") {
                COUNTED.fetch_add(1, Ordering::SeqCst);
            }
        }));
        assert_eq!(quietly(|| panic!("after")), Err::<(), _>("after".to_string()));
        assert_eq!(COUNTED.load(Ordering::SeqCst), 0);
        assert!(std::thread::spawn(|| panic!("after")).join().is_err());
        assert_eq!(COUNTED.load(Ordering::SeqCst), 1);
        panic::set_hook(before);
        assert_eq!(quietly(|| 5), Ok(5));
    }

    #[test]
    fn the_message_is_read_whatever_the_panic_carried() {
        assert_eq!(message(&"literal"), "literal");
        assert_eq!(message(&format!("formatted {}", 1)), "formatted 1");
        assert_eq!(message(&7u8), "a panic that carried no text");
    }
}
