//! The server-sent event stream `GET /events`, read as raw HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{TestNode, addr, alice, bob, transfer};

/// How long the test waits for the stream to say something.
const STREAM_DEADLINE: Duration = Duration::from_secs(10);

/// A raw HTTP/1.1 connection reading an SSE stream.
struct Stream {
    socket: TcpStream,
    buffer: Vec<u8>,
    deadline: Instant,
}

impl Stream {
    fn open(node: &TestNode) -> Stream {
        let mut socket = TcpStream::connect(node.addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let request = format!(
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            node.addr
        );
        socket.write_all(request.as_bytes()).expect("send request");
        Stream {
            socket,
            buffer: Vec::new(),
            deadline: Instant::now() + STREAM_DEADLINE,
        }
    }

    /// Reads until the buffer contains `needle` after `from`; returns the index just past it.
    fn read_until(&mut self, from: usize, needle: &str) -> usize {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(at) = find(&self.buffer[from..], needle.as_bytes()) {
                return from + at + needle.len();
            }
            assert!(
                Instant::now() < self.deadline,
                "no {needle:?} on the stream within {STREAM_DEADLINE:?}; got {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            match self.socket.read(&mut chunk) {
                Ok(0) => panic!(
                    "stream closed; got {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading the stream: {e}"),
            }
        }
    }

    /// Waits for the next `block` event after `from`; returns its data and where it ended.
    fn next_block(&mut self, from: usize) -> (Value, usize) {
        let start = self.read_until(from, "event: block\ndata: ");
        let end = self.read_until(start, "\n");
        let data = String::from_utf8_lossy(&self.buffer[start..end - 1]).into_owned();
        let value = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("block event data is not JSON ({e}): {data:?}"));
        (value, end)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_committed_block_is_streamed_as_a_block_event_with_its_receipts() {
    let node = TestNode::start();
    let mut stream = Stream::open(&node);
    let body_start = stream.read_until(0, "\r\n\r\n");
    let head = String::from_utf8_lossy(&stream.buffer[..body_start]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");

    // The subscription exists once the head is sent: commit after it.
    let hash = node.submit_ok(&transfer(&alice(), 0, addr(&bob()), 77));
    let block_hash = node.commit_block();
    let empty_hash = node.commit_block();

    let (first, end) = stream.next_block(body_start);
    assert_eq!(first["height"], 1, "{first}");
    assert_eq!(first["hash"], hex::encode(block_hash));
    let tip_block = node.get_ok("/blocks/1");
    assert_eq!(first["state_root"], tip_block["state_root"]);
    assert_eq!(first["timestamp_ms"], tip_block["timestamp_ms"]);
    let receipts = first["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 1, "{first}");
    assert_eq!(receipts[0]["tx_hash"], hash);
    assert_eq!(receipts[0], node.tx_status(&hash)["receipt"]);

    let (second, _) = stream.next_block(end);
    assert_eq!(second["height"], 2, "{second}");
    assert_eq!(second["hash"], hex::encode(empty_hash));
    assert_eq!(second["receipts"], serde_json::json!([]));
}
