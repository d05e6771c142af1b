//! A response body that tells a watcher about its trailers and its end.
//!
//! A gRPC call's status travels in the trailers once a message went out, so whoever needs the
//! status (the per-RPC telemetry) or must amend it (the server edge, which adds the ErrorInfo
//! tonic leaves out) has to see the body through. One wrapper serves both, so the body is
//! wrapped the same way everywhere, and the rule for a body that never finishes (the caller
//! went away) is written once.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Frame;

/// What a [`WatchBody`] tells about its body.
pub trait BodyEnd {
    /// The trailers, before they go out: the watcher may read or amend them.
    fn trailers(&mut self, _trailers: &mut http::HeaderMap) {}

    /// The body is over, called once: `finished` when it ran to its end (after its trailers, if
    /// any), not when it failed or was dropped before (the caller reset the stream or went away).
    fn end(&mut self, _finished: bool) {}
}

pin_project_lite::pin_project! {
    /// `inner`, with `watcher` told about its trailers and its end (see [`BodyEnd`]).
    pub struct WatchBody<B: http_body::Body, W: BodyEnd> {
        #[pin]
        inner: B,
        watcher: W,
        ended: bool,
    }

    impl<B: http_body::Body, W: BodyEnd> PinnedDrop for WatchBody<B, W> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.ended {
                // A body that says it is over is not polled again: it finished all the same.
                let finished = this.inner.is_end_stream();
                this.watcher.end(finished);
            }
        }
    }
}

impl<B: http_body::Body, W: BodyEnd> WatchBody<B, W> {
    /// Wraps `inner`.
    pub fn new(inner: B, watcher: W) -> Self {
        Self {
            inner,
            watcher,
            ended: false,
        }
    }
}

impl<B: http_body::Body, W: BodyEnd> http_body::Body for WatchBody<B, W> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if *this.ended {
            return polled;
        }
        match polled {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    this.watcher.trailers(trailers);
                    // Trailers are the last frame; the server may not poll for the end.
                    *this.ended = true;
                    this.watcher.end(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                *this.ended = true;
                this.watcher.end(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                *this.ended = true;
                this.watcher.end(false);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    use super::*;

    /// Writes down what it is told.
    #[derive(Clone, Default)]
    struct Told(Arc<parking_lot::Mutex<Vec<String>>>);

    impl BodyEnd for Told {
        fn trailers(&mut self, trailers: &mut http::HeaderMap) {
            self.0.lock().push(format!("trailers {}", trailers.len()));
            trailers.insert("amended", http::HeaderValue::from_static("yes"));
        }
        fn end(&mut self, finished: bool) {
            self.0.lock().push(format!("end {finished}"));
        }
    }

    fn body(
        trailers: bool,
    ) -> http_body_util::StreamBody<impl futures::Stream<Item = FrameResult>> {
        let mut frames = vec![Ok(Frame::data(Bytes::from_static(b"message")))];
        if trailers {
            frames.push(Ok(Frame::trailers(http::HeaderMap::new())));
        }
        http_body_util::StreamBody::new(futures::stream::iter(frames))
    }

    type FrameResult = Result<Frame<Bytes>, std::convert::Infallible>;

    #[tokio::test]
    async fn trailers_are_shown_amendable_then_the_end_is_told_once() {
        let told = Told::default();
        let collected = WatchBody::new(body(true), told.clone())
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.trailers().unwrap()["amended"], "yes");
        assert_eq!(*told.0.lock(), ["trailers 0", "end true"]);
    }

    #[tokio::test]
    async fn a_body_without_trailers_ends_finished() {
        let told = Told::default();
        let _ = WatchBody::new(body(false), told.clone())
            .collect()
            .await
            .unwrap();
        assert_eq!(*told.0.lock(), ["end true"]);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_did_not_finish() {
        let told = Told::default();
        let mut watched = Box::pin(WatchBody::new(body(true), told.clone()));
        let first = watched.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(watched);
        assert_eq!(*told.0.lock(), ["end false"]);
    }

    #[test]
    fn an_empty_body_dropped_unpolled_finished() {
        let told = Told::default();
        drop(WatchBody::new(
            http_body_util::Empty::<Bytes>::new(),
            told.clone(),
        ));
        assert_eq!(*told.0.lock(), ["end true"]);
    }
}
