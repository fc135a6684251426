//! Invocations a server (or any trigger run inside one) must wait for at
//! shutdown, and the signal that cancels them at the end of its grace.

use std::sync::Arc;

use tokio::sync::watch;

tokio::task_local! {
    /// The invocations of the server whose request is being handled.
    pub(crate) static INVOCATIONS: Invocations;
}

/// A server's invocations: how many have not yet handed in their usage
/// record, and the signal that cancels them all at the end of the grace.
#[derive(Clone)]
pub(crate) struct Invocations {
    running: Arc<watch::Sender<usize>>,
    pub(crate) cancel: Arc<watch::Sender<bool>>,
}

impl Invocations {
    pub(crate) fn new() -> Invocations {
        Invocations {
            running: Arc::new(watch::Sender::new(0)),
            cancel: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Waits until every invocation has handed in its record.
    pub(crate) async fn idle(&self) {
        let _ = self.running.subscribe().wait_for(|n| *n == 0).await;
    }

    pub(crate) fn running(&self) -> usize {
        *self.running.borrow()
    }
}

/// Held by one invocation until its usage record is handed out: the
/// server's shutdown waits for it, and can cancel the invocation. Inert
/// outside a [`Server`](crate::Server) (a function invoked directly by an embedder).
pub(crate) struct Tracked(Option<(Arc<watch::Sender<usize>>, watch::Receiver<bool>)>);

impl Tracked {
    /// Counts an invocation of the server handling the current request.
    pub(crate) fn new() -> Tracked {
        Tracked(
            INVOCATIONS
                .try_with(|invocations| {
                    invocations.running.send_modify(|n| *n += 1);
                    (invocations.running.clone(), invocations.cancel.subscribe())
                })
                .ok(),
        )
    }

    /// Completes when the server's grace is over: the invocation must stop.
    pub(crate) async fn cancelled(&self) {
        match &self.0 {
            Some((_, cancel)) => {
                let mut cancel = cancel.clone();
                if cancel.wait_for(|cancel| *cancel).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some((running, _)) = &self.0 {
            running.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}
