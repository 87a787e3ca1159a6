//! The live progress line on stderr (stdout is reserved for the summary / JSON).
//!
//! Contract: on a terminal, each [`Progress::line`] overwrites the previous one in
//! place; otherwise (a log file, CI) each is a line of its own. [`Progress::finish`]
//! ends an in-place line so the next output starts on a fresh line. [`Progress::note`]
//! prints a permanent message.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Progress {
    tty: bool,
    pending: Arc<AtomicBool>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            pending: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            self.pending.store(true, Ordering::Relaxed);
        } else {
            let _ = writeln!(err, "{text}");
        }
    }

    pub fn finish(&self) {
        if self.pending.swap(false, Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr());
        }
    }

    pub fn note(&self, text: &str) {
        self.finish();
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}
