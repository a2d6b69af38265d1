//! The broker-wide "shutdown has begun" signal: long polls answer at once,
//! background loops (retention, cleaner, coordinator timers) return. One
//! trigger, held by the server; any number of cheap signal clones.

use tokio::sync::watch;

/// Fires the signal; held by whoever runs the shutdown sequence.
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Observes the signal.
#[derive(Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.subscribe())
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown has begun (at once if it already has, or if
    /// the trigger is gone).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.0.borrow()
    }
}
