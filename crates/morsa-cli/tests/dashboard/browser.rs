//! A real headless Chromium (Debian's `chromium`) for the status page test, bounded in time,
//! and just enough PNG reading to check its screenshots: the size from the IHDR chunk, the
//! pixels from the IDAT chunks (inflated with miniz_oxide, scanline filters undone here).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest one Chromium run may take before it is killed.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(90);

/// The browser's command: `chromium` (Debian) or `chromium-browser` (elsewhere).
fn chromium_command() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|output| output.status.success()))
        .unwrap_or_else(|| panic!("no chromium: install Debian's `chromium` (bash .ci/install-tools)"))
}

/// Runs headless Chromium with `args` (and a fresh profile in `profile`), killing it if it
/// runs past [`CHROMIUM_DEADLINE`].
pub fn chromium(profile: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(chromium_command())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the pipes on their own threads so that a chatty browser never blocks on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).map(|_| bytes).unwrap_or_default()
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut bytes).map(|_| bytes).unwrap_or_default()
    });
    let deadline = Instant::now() + CHROMIUM_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} ran past {CHROMIUM_DEADLINE:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// A decoded 8-bit RGB or RGBA PNG.
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel (3 or 4).
    pub channels: usize,
    /// Rows top to bottom, `width * channels` bytes each.
    pub pixels: Vec<u8>,
}

impl Image {
    /// How many different pixel values the image holds (counting stops at `enough`).
    pub fn distinct_colours(&self, enough: usize) -> usize {
        let mut seen = std::collections::BTreeSet::new();
        for pixel in self.pixels.chunks(self.channels) {
            seen.insert(pixel.to_vec());
            if seen.len() >= enough {
                break;
            }
        }
        seen.len()
    }
}

/// Parses `bytes` as a non-interlaced 8-bit RGB or RGBA PNG, panicking on anything else.
pub fn decode_png(bytes: &[u8]) -> Image {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length = usize::try_from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())).unwrap();
        let kind = &bytes[at + 4..at + 8];
        chunks.push((kind.to_vec(), &bytes[at + 8..at + 8 + length]));
        at += 12 + length; // length, type, data, CRC
    }
    let (first, header) = &chunks[0];
    assert_eq!(first, b"IHDR", "the first chunk is IHDR");
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let (bit_depth, colour_type, interlace) = (header[8], header[9], header[12]);
    assert_eq!((bit_depth, interlace), (8, 0), "an 8-bit, non-interlaced PNG");
    let channels = match colour_type {
        2 => 3,
        6 => 4,
        other => panic!("colour type {other} is not RGB or RGBA"),
    };
    let compressed: Vec<u8> = chunks
        .iter()
        .filter(|(kind, _)| kind == b"IDAT")
        .flat_map(|(_, data)| data.iter().copied())
        .collect();
    let filtered = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).unwrap();
    let stride = usize::try_from(width).unwrap() * channels;
    let rows = usize::try_from(height).unwrap();
    assert_eq!(filtered.len(), rows * (stride + 1), "IDAT holds every row");
    let mut pixels = vec![0u8; rows * stride];
    for row in 0..rows {
        let filter = filtered[row * (stride + 1)];
        let line = &filtered[row * (stride + 1) + 1..(row + 1) * (stride + 1)];
        for column in 0..stride {
            let left = if column >= channels { pixels[row * stride + column - channels] } else { 0 };
            let up = if row > 0 { pixels[(row - 1) * stride + column] } else { 0 };
            let up_left = if row > 0 && column >= channels {
                pixels[(row - 1) * stride + column - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => u8::try_from((u16::from(left) + u16::from(up)) / 2).unwrap(),
                4 => paeth(left, up, up_left),
                other => panic!("unknown PNG filter {other}"),
            };
            pixels[row * stride + column] = line[column].wrapping_add(predicted);
        }
    }
    Image { width, height, channels, pixels }
}

/// The PNG Paeth predictor.
fn paeth(left: u8, up: u8, up_left: u8) -> u8 {
    let estimate = i16::from(left) + i16::from(up) - i16::from(up_left);
    let (to_left, to_up, to_up_left) = (
        (estimate - i16::from(left)).abs(),
        (estimate - i16::from(up)).abs(),
        (estimate - i16::from(up_left)).abs(),
    );
    if to_left <= to_up && to_left <= to_up_left {
        left
    } else if to_up <= to_up_left {
        up
    } else {
        up_left
    }
}
