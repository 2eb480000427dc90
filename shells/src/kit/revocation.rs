//! Streams outlive the request that opened them, and with it the check of
//! its credential. [`Guarded`] checks the credential again every few
//! seconds while the stream is open; once it no longer holds (a revoked
//! key, an expired token or ended session, a deleted project or a lost
//! membership) the stream's last frame says `revoked` and it ends.
//!
//! Only a definite refusal ends a stream: when the identity service does
//! not answer, the stream goes on (it was valid when last checked) and the
//! next check tries again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bunbase_core::auth::TokenVerifier;
use bunbase_core::docs::WatchEvent;
use bunbase_core::events::{CloseReason, Delivery};
use bunbase_core::{Error, ErrorCode, ProjectId};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior};

use super::Bearer;

/// A stream frame that can say the stream ended because its credential
/// no longer holds.
pub trait Revoked {
    fn revoked() -> Self;
}

impl Revoked for Delivery {
    fn revoked() -> Self {
        Delivery::Closed(CloseReason::Revoked)
    }
}

impl Revoked for WatchEvent {
    fn revoked() -> Self {
        WatchEvent::Closed {
            reason: CloseReason::Revoked.as_str().into(),
        }
    }
}

type Check = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// `frames` until the credential stops holding; then one `revoked` frame.
pub struct Guarded<S> {
    frames: S,
    verifier: Arc<dyn TokenVerifier>,
    token: Arc<str>,
    project: ProjectId,
    every: Interval,
    check: Option<Check>,
    ended: bool,
}

impl<S> Guarded<S> {
    pub fn new(
        frames: S,
        verifier: Arc<dyn TokenVerifier>,
        credential: Bearer,
        project: ProjectId,
        every: Duration,
    ) -> Guarded<S> {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Guarded {
            frames,
            verifier,
            token: credential.0.into(),
            project,
            every: timer,
            check: None,
            ended: false,
        }
    }

    fn start_check(&self) -> Check {
        let (verifier, token, project) = (
            self.verifier.clone(),
            self.token.clone(),
            self.project.clone(),
        );
        Box::pin(async move { verifier.verify(&token, &project).await.map(|_| ()) })
    }
}

/// Whether a failed check means the credential is gone (not that the
/// identity service could not be asked).
fn no_longer_holds(error: &Error) -> bool {
    matches!(
        error.code(),
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied | ErrorCode::NotFound
    )
}

impl<S, F> Stream for Guarded<S>
where
    S: Stream<Item = F> + Unpin,
    F: Revoked,
{
    type Item = F;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // Frames first: a busy stream is not held up by its checks.
        if let Poll::Ready(frame) = Pin::new(&mut self.frames).poll_next(cx) {
            self.ended = frame.is_none();
            return Poll::Ready(frame);
        }
        loop {
            if let Some(check) = self.check.as_mut() {
                match check.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(outcome) => {
                        self.check = None;
                        if let Err(e) = outcome {
                            if no_longer_holds(&e) {
                                self.ended = true;
                                return Poll::Ready(Some(F::revoked()));
                            }
                            tracing::warn!(error = %e, "could not check a stream's credential; it stays open");
                        }
                    }
                }
            }
            match self.every.poll_tick(cx) {
                Poll::Ready(_) => self.check = Some(self.start_check()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use bunbase_core::auth::{Principal, PrincipalKind, Rights};
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: valid, 1: unreachable, 2: revoked.
    struct Switch(AtomicU8);

    #[async_trait]
    impl TokenVerifier for Switch {
        async fn verify(&self, _: &str, project: &ProjectId) -> Result<Principal, Error> {
            match self.0.load(Ordering::SeqCst) {
                0 => Ok(Principal {
                    subject: "t".into(),
                    kind: PrincipalKind::Service,
                    project: project.clone(),
                    rights: Rights {
                        read: true,
                        write: false,
                        admin: false,
                    },
                }),
                1 => Err(Error::unavailable("identity down")),
                _ => Err(Error::Unauthenticated("revoked".into())),
            }
        }
    }

    #[tokio::test]
    async fn a_stream_ends_once_its_credential_no_longer_holds() {
        let switch = Arc::new(Switch(AtomicU8::new(0)));
        let (tx, rx) = tokio::sync::mpsc::channel::<Delivery>(4);
        let mut stream = Guarded::new(
            tokio_stream_from(rx),
            switch.clone(),
            Bearer("t".into()),
            ProjectId::new("p").unwrap(),
            Duration::from_millis(20),
        );
        tx.send(Delivery::Closed(CloseReason::Lagged))
            .await
            .unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Delivery::Closed(CloseReason::Lagged))
        ));
        // Valid, then unreachable: the stream stays open through checks.
        let quiet = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(quiet.is_err(), "nothing to say while valid");
        switch.0.store(1, Ordering::SeqCst);
        let quiet = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(
            quiet.is_err(),
            "an unreachable identity service ends nothing"
        );
        switch.0.store(2, Ordering::SeqCst);
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("ends within one check");
        assert!(matches!(
            ended,
            Some(Delivery::Closed(CloseReason::Revoked))
        ));
        assert!(stream.next().await.is_none());
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Delivery>,
    ) -> Pin<Box<dyn Stream<Item = Delivery> + Send>> {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
