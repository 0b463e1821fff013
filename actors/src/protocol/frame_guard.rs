//! Pre-auth frame-size guard. tokio-tungstenite fixes its limits when the stream is created,
//! so the 64 KiB pre-auth cap is enforced underneath it: [`FrameScanner`] follows WebSocket
//! frame headers in the raw client bytes and rejects a message whose declared length exceeds
//! the current limit *before* its payload is buffered. [`GuardedIo`] applies it to a stream;
//! the limit is raised to 25 MiB after `hello-ok` through a shared atomic.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A message over the limit: its declared size and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {size} bytes exceeds the {limit}-byte limit")]
pub struct Oversize {
    /// Declared payload size so far (sum over continuation frames).
    pub size: u64,
    /// The limit in force.
    pub limit: u64,
}

/// Follows frame boundaries in a client→server byte stream (RFC 6455 §5.2).
#[derive(Debug, Default)]
pub struct FrameScanner {
    header: [u8; 14],
    have: usize,
    payload_left: u64,
    message_len: u64,
}

// === impl FrameScanner ===

impl FrameScanner {
    /// Feeds received bytes; fails on the first header that declares a message over `limit`.
    pub fn feed(&mut self, mut data: &[u8], limit: u64) -> Result<(), Oversize> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = (self.payload_left.min(data.len() as u64)) as usize;
                self.payload_left -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if let Some(total) = self.header_len() {
                if self.have == total {
                    self.finish_header(limit)?;
                }
            }
        }
        Ok(())
    }

    /// Header length once the first two bytes are known.
    fn header_len(&self) -> Option<usize> {
        if self.have < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        Some(2 + ext + if masked { 4 } else { 0 })
    }

    fn finish_header(&mut self, limit: u64) -> Result<(), Oversize> {
        let h = &self.header;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        let len = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            n => u64::from(n),
        };
        self.have = 0;
        self.payload_left = len;
        // Control frames (0x8..) are small and do not belong to a message.
        if opcode < 0x8 {
            if opcode != 0 {
                self.message_len = 0;
            }
            self.message_len = self.message_len.saturating_add(len);
            let size = self.message_len;
            if fin {
                self.message_len = 0;
            }
            if size > limit {
                return Err(Oversize { size, limit });
            }
        }
        Ok(())
    }
}

/// A stream whose reads pass through a [`FrameScanner`] with a shared, raisable limit.
/// On an oversize frame the read fails with `InvalidData` carrying [`Oversize`].
pub struct GuardedIo<S> {
    inner: S,
    scanner: FrameScanner,
    limit: Arc<AtomicUsize>,
}

// === impl GuardedIo ===

impl<S> GuardedIo<S> {
    /// Wraps `inner`; `limit` may be changed at any time by its other holders.
    pub fn new(inner: S, limit: Arc<AtomicUsize>) -> Self {
        Self {
            inner,
            scanner: FrameScanner::default(),
            limit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let limit = this.limit.load(Ordering::Relaxed) as u64;
            if let Err(e) = this.scanner.feed(&buf.filled()[before..], limit) {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Whether an I/O error came from the guard.
pub fn is_oversize(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<Oversize>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with `len` payload bytes.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn table() {
        const L: u64 = 65536;
        let cases: Vec<(Vec<u8>, Option<u64>)> = vec![
            (frame(true, 1, 10), None),
            (frame(true, 1, 65536), None),
            (frame(true, 1, 65537), Some(65537)),
            (frame(true, 2, 1 << 20), Some(1 << 20)),
            ([frame(true, 1, 100), frame(true, 1, 65000)].concat(), None),
            (
                [frame(false, 1, 40000), frame(true, 0, 40000)].concat(),
                Some(80000),
            ),
            ([frame(true, 9, 10), frame(true, 1, 65536)].concat(), None),
        ];
        for (bytes, want) in cases {
            // feed in awkward chunk sizes: the verdict must not depend on them
            for chunk in [1usize, 3, 7, 4096, bytes.len()] {
                let mut s = FrameScanner::default();
                let mut got = None;
                for c in bytes.chunks(chunk) {
                    if let Err(e) = s.feed(c, L) {
                        got = Some(e.size);
                        break;
                    }
                }
                assert_eq!(got, want, "chunk {chunk}");
            }
        }
    }

    #[test]
    fn raised_limit_applies_to_next_frame() {
        let mut s = FrameScanner::default();
        s.feed(&frame(true, 1, 100), 65536).unwrap();
        assert!(s.feed(&frame(true, 1, 100_000), 65536).is_err());
        let mut s = FrameScanner::default();
        s.feed(&frame(true, 1, 100_000), 25 << 20).unwrap();
    }
}
