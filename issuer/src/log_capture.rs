//! Test support: what `tracing` writes, captured in memory for a test to read.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

/// Collects what a subscriber writes to it. Cheap to clone; clones share the buffer.
#[derive(Clone, Default)]
pub(crate) struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far (it must be UTF-8).
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Plain-text lines up to `level` logged on this thread (a `#[tokio::test]` runs its
    /// spawned tasks on it) go into this buffer while the guard lives.
    pub(crate) fn capture(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(level)
                .with_writer(move || sink.clone())
                .finish(),
        )
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
