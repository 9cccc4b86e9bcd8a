//! The WASI (preview 1) context each operator instance gets, and the forwarding of the guest's
//! stdout and stderr to `tracing`.
//!
//! Operators get no preopened directories, no environment variables and no arguments: the
//! filesystem and the process environment are the host's, not the operator's. Clocks and random
//! numbers are the host's own. Standard output and error are split into lines and each line is
//! emitted as a `tracing` event tagged with the operator's name, so `println!` debugging from a
//! guest lands in the host's structured logs instead of interleaving raw bytes on its stdout.
//! Lines are guest-controlled text: each is cut to [`MAX_LOG_LINE_BYTES`] on a UTF-8 boundary
//! (the rest of an over-long line is discarded up to its newline) and counts against the
//! operator's log rate ([`GuestLog`]), shared with its `log` host calls.
//! The monotonic clock is the instance's [`GuestClock`], which keeps counting across swaps.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::WasiCtxBuilder;

use super::guest_log::{truncate_utf8, GuestLog, MAX_LOG_LINE_BYTES};
use super::swap::clock::GuestClock;

/// Bytes of a line kept before it is cut: the limit plus room for the character it may split,
/// so a guest that never writes a newline cannot make the host buffer unbounded output.
const KEPT_LINE_BYTES: usize = MAX_LOG_LINE_BYTES + 4;

/// The largest single write wasmtime-wasi may hand us (its own permit size for stdio).
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// Builds the WASI context for one instance of `operator`, reading `clock` as monotonic time.
pub(crate) fn build_context(operator: &str, clock: GuestClock) -> WasiP1Ctx {
    WasiCtxBuilder::new()
        .stdout(GuestOutput::new(operator, Stream::Stdout))
        .stderr(GuestOutput::new(operator, Stream::Stderr))
        .monotonic_clock(clock)
        .build_p1()
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One of an instance's output streams. Every handle wasmtime-wasi opens on it shares one line
/// buffer, so output is split into lines consistently however the guest writes it.
#[derive(Clone)]
struct GuestOutput {
    lines: Arc<Mutex<LineBuffer>>,
}

impl GuestOutput {
    fn new(operator: &str, stream: Stream) -> GuestOutput {
        GuestOutput {
            lines: Arc::new(Mutex::new(LineBuffer {
                operator: operator.into(),
                stream,
                pending: Vec::new(),
                cut_bytes: 0,
                log: GuestLog::for_operator(operator),
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        // A poisoned lock means a tracing subscriber panicked mid-event; the buffer itself is
        // still consistent, so keep forwarding.
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.push(bytes);
    }
}

struct LineBuffer {
    operator: Arc<str>,
    stream: Stream,
    /// The current line, at most [`KEPT_LINE_BYTES`].
    pending: Vec<u8>,
    /// Bytes of the current line discarded beyond [`KEPT_LINE_BYTES`].
    cut_bytes: usize,
    log: Arc<GuestLog>,
}

impl LineBuffer {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&byte| byte == b'\n') {
            self.keep(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.keep(bytes);
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = KEPT_LINE_BYTES.saturating_sub(self.pending.len());
        let kept = bytes.len().min(room);
        self.pending.extend_from_slice(&bytes[..kept]);
        self.cut_bytes = self.cut_bytes.saturating_add(bytes.len() - kept);
    }

    fn emit(&mut self) {
        let cut_bytes = std::mem::take(&mut self.cut_bytes);
        if !self.log.admit() {
            self.pending.clear();
            return;
        }
        let line = String::from_utf8_lossy(&self.pending);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let line = match (truncate_utf8(line, MAX_LOG_LINE_BYTES), cut_bytes) {
            (line, 0) => line,
            (line, cut) => format!("{line}… [{cut} more bytes truncated]").into(),
        };
        let operator = &*self.operator;
        let stream = self.stream.name();
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "wasm_operator::guest", operator, stream, "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "wasm_operator::guest", operator, stream, "{line}")
            }
        }
        self.pending.clear();
    }
}

impl Drop for LineBuffer {
    /// An unterminated last line is still output worth seeing (often a panic message).
    fn drop(&mut self) {
        if !self.pending.is_empty() || self.cut_bytes > 0 {
            self.emit();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Lines are emitted as soon as they are complete; a partial line waits for its newline.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    /// Writing never blocks, so the stream is always ready.
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_line_is_held_to_the_limit_and_the_rest_counted() {
        let output = GuestOutput::new("endless-line-test", Stream::Stdout);
        for _ in 0..1000 {
            output.write(&[b'x'; 1024]);
        }
        {
            let lines = output.lines.lock().unwrap();
            assert_eq!(lines.pending.len(), KEPT_LINE_BYTES);
            assert_eq!(lines.cut_bytes, 1000 * 1024 - KEPT_LINE_BYTES);
        }
        output.write(b"\nnext");
        let lines = output.lines.lock().unwrap();
        assert_eq!(lines.pending, b"next");
        assert_eq!(lines.cut_bytes, 0);
    }
}
