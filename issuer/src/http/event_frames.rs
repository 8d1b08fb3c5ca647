//! The push channel's `revocations` event for the list in force, built once per list and shared
//! by every open stream.
//!
//! Built per stream (axum's `Event` copies its data into a buffer of its own), each new list was a
//! copy of the whole signed list for every subscriber, kept until that subscriber read it: 10,000
//! slow readers of a 1 MB list held 10 GB. A shared [`Bytes`] is one copy however many streams
//! hold it.

use std::sync::{Mutex, PoisonError};

use axum::body::Bytes;

use crate::store::StoredList;

/// The event of the newest list asked for, by serial.
#[derive(Debug, Default)]
pub struct EventFrames(Mutex<Option<(i64, Bytes)>>);

impl EventFrames {
    /// `event: revocations`, `id: <serial>`, `data: <the signed list>`, as one shared buffer.
    pub(crate) fn of(&self, list: &StoredList) -> Bytes {
        if let Some((serial, frame)) = self.lock().as_ref()
            && *serial == list.serial
        {
            return frame.clone();
        }
        // Built outside the lock (a list may be a megabyte), and kept only if no newer list's
        // event was kept meanwhile: a stream still sending an older list must not evict it.
        let frame = Bytes::from(frame_text(list));
        let mut cached = self.lock();
        match cached.as_ref() {
            Some((serial, kept)) if *serial == list.serial => kept.clone(),
            Some((serial, _)) if *serial > list.serial => frame,
            _ => {
                *cached = Some((list.serial, frame.clone()));
                frame
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(i64, Bytes)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The event's text. A compact JWS is one line; were it ever not, each of its lines is a `data:`
/// line of its own, as the event-stream format joins them back.
fn frame_text(list: &StoredList) -> String {
    let mut text = format!("event: revocations\nid: {}\n", list.serial);
    for line in list.jws.split('\n') {
        text.push_str("data: ");
        text.push_str(line.trim_end_matches('\r'));
        text.push('\n');
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(serial: i64, jws: &str) -> StoredList {
        StoredList {
            serial,
            jws: jws.into(),
            iat: 0,
            exp: 0,
            as_of: 0,
        }
    }

    #[test]
    fn every_stream_shares_one_buffer_per_list() {
        let frames = EventFrames::default();
        let first = frames.of(&list(7, "a.b.c"));
        assert_eq!(&first[..], b"event: revocations\nid: 7\ndata: a.b.c\n\n");
        // Another subscriber of the same list: the same bytes, not a copy.
        assert_eq!(frames.of(&list(7, "a.b.c")).as_ptr(), first.as_ptr());
        let next = frames.of(&list(8, "d.e.f"));
        assert_eq!(&next[..], b"event: revocations\nid: 8\ndata: d.e.f\n\n");
        assert_ne!(next.as_ptr(), first.as_ptr());
        // A stream still sending the older list does not evict the newer one's event.
        let _ = frames.of(&list(7, "a.b.c"));
        assert_eq!(frames.of(&list(8, "d.e.f")).as_ptr(), next.as_ptr());
    }

    /// The route from outside (the stream was axum's `Sse` before): an event stream, not cached,
    /// the list in force first, the very buffer two streams share, and the end of the stream
    /// when the server closes the feed.
    #[tokio::test]
    async fn the_push_route_streams_the_shared_event_and_ends_on_close() {
        use axum::body::Body;
        use axum::http::Request;
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let h = crate::http::tests::harness("events-route").await;
        let open = || async {
            let res = h
                .app
                .clone()
                .oneshot(
                    Request::get("/v1/revocations/events")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "text/event-stream");
            assert_eq!(res.headers()["cache-control"], "no-cache");
            let mut body = res.into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            (body, first)
        };
        let (mut one, first) = open().await;
        let (_two, second) = open().await;
        let list = h.state.list.current();
        assert_eq!(
            &first[..],
            format!(
                "event: revocations\nid: {}\ndata: {}\n\n",
                list.serial, list.jws
            )
            .as_bytes()
        );
        assert_eq!(first.as_ptr(), second.as_ptr(), "a copy per stream");
        h.state.list.close();
        assert!(one.frame().await.is_none(), "the stream outlived the feed");
    }

    #[test]
    fn a_list_of_several_lines_is_several_data_lines() {
        assert_eq!(
            frame_text(&list(1, "x\r\ny")),
            "event: revocations\nid: 1\ndata: x\ndata: y\n\n"
        );
    }
}
