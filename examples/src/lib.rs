//! Runnable keymint examples. The browser demo lives here as a library so that its end-to-end test
//! can start it in-process.

pub mod demo;
