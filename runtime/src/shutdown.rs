//! Graceful shutdown: one signal (SIGTERM from the kubelet, SIGINT from a terminal) reaches
//! every task that holds a [`Shutdown`].

use tokio::sync::watch;

/// A cheap, cloneable view of "has the process been asked to stop?".
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Triggers a [`Shutdown`] by hand (tests, or a component that stops itself).
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// A shutdown fired only through the returned [`Trigger`].
    pub fn manual() -> (Trigger, Self) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Self(rx))
    }

    /// A shutdown fired by the first SIGTERM or SIGINT. Fails only if the signal handlers
    /// cannot be installed.
    pub fn on_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (trigger, shutdown) = Self::manual();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            trigger.fire();
        });
        Ok(shutdown)
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown fired (at once if it already did). A dropped trigger counts
    /// as never firing.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let (trigger, shutdown) = Shutdown::manual();
        let other = shutdown.clone();
        assert!(!other.is_fired());
        let waiter = tokio::spawn(async move { other.wait().await });
        trigger.fire();
        waiter.await.unwrap();
        assert!(shutdown.is_fired());
        // Waiting after the fact returns at once.
        shutdown.wait().await;
    }
}
