//! Keeps a panic in one connection's task from killing its shard.
//!
//! glommio does not catch a panic in a spawned task: it unwinds out of
//! `LocalExecutor::run`, ending the shard thread, and the supervisor then
//! stops the whole node. Every connection task runs inside [`catch_panic`], so
//! a bug reached by one client costs that client its connection only.
//!
//! The future is polled under `AssertUnwindSafe`: after a panic the only
//! state it may have left half-updated is that connection's (its slot in the
//! shard, its subscriptions), which the caller removes; the shard's `RefCell`
//! borrow is released by the unwinding itself.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

/// Polls `fut` to completion, catching a panic from any of its polls. On a
/// panic, `on_panic` runs with the panic message and the message is returned.
/// The unwinding has already dropped what the panicking code owned, so
/// anything `on_panic` needs (the socket) must live outside `fut`.
pub async fn catch_panic<F: Future>(
    fut: F,
    on_panic: impl FnOnce(&str),
) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    let mut on_panic = Some(on_panic);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                if let Some(hook) = on_panic.take() {
                    hook(&message);
                }
                Poll::Ready(Err(message))
            }
        },
    )
    .await
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutor;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Sets its flag when dropped: stands for the socket a connection owns.
    struct Socket(Rc<Cell<bool>>);
    impl Drop for Socket {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn a_bare_task_panic_takes_the_executor_down() {
        // Why the wrapper exists: glommio propagates the panic out of run().
        let outcome = std::panic::catch_unwind(|| {
            LocalExecutor::default().run(async {
                glommio::spawn_local(async { panic!("bug reached by a client") }).await
            })
        });
        assert!(outcome.is_err());
    }

    #[test]
    fn a_caught_panic_ends_only_its_task() {
        let served = LocalExecutor::default().run(async {
            let closed = Rc::new(Cell::new(false));
            let seen = Rc::new(Cell::new(None::<(String, bool)>));
            let (socket, seen2, closed2) = (Socket(closed.clone()), seen.clone(), closed.clone());
            let bad = glommio::spawn_local(catch_panic(
                async move {
                    let _socket = socket;
                    glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                    let input: Option<u8> = std::hint::black_box(None);
                    input.expect("input-derived unwrap")
                },
                move |msg| seen2.set(Some((msg.to_owned(), closed2.get()))),
            ));
            // A neighbour keeps running across the panic.
            let good = glommio::spawn_local(async {
                let mut ticks = 0;
                for _ in 0..10 {
                    glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
                    ticks += 1;
                }
                ticks
            });
            let bad = bad.await;
            (bad, good.await, seen.take(), closed.get())
        });
        let (bad, ticks, seen, closed) = served;
        assert_eq!(bad, Err("input-derived unwrap".to_owned()));
        assert_eq!(ticks, 10);
        // The unwinding dropped the socket the future owned before the hook
        // ran: why conn::run keeps its socket halves outside the caught future.
        assert_eq!(seen, Some(("input-derived unwrap".to_owned(), true)));
        assert!(closed);
    }

    #[test]
    fn a_finished_future_passes_its_output_through() {
        let out = LocalExecutor::default().run(catch_panic(async { 7 }, |_| unreachable!()));
        assert_eq!(out, Ok(7));
    }
}
