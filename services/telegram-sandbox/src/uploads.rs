//! Files uploaded with a send (multipart/form-data), as Telegram takes them: a file part named
//! after the media parameter, or any part the parameter points at as `attach://<part>`. A photo
//! must be an image Telegram can read (PNG or JPEG here) of sane dimensions; the message then
//! shows the file's real size, dimensions, name and type. Tests read the bytes back by file_id.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;

use crate::envelope::ApiError;

/// Telegram's cap on an uploaded photo, and on any uploaded file.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// A photo's width and height together, and the most one may exceed the other.
const MAX_PHOTO_SIDES: u32 = 10_000;
const MAX_PHOTO_RATIO: u32 = 20;

/// A file part of a multipart request.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub bytes: Bytes,
}

impl Upload {
    /// The file_id Telegram gives an uploaded file: new for each content.
    pub fn file_id(&self) -> String {
        let mut hasher = DefaultHasher::new();
        self.bytes.hash(&mut hasher);
        format!("BQACAgIAAxkBAAI{:016x}", hasher.finish())
    }

    /// A photo's width and height, once it passes Telegram's checks.
    pub fn photo_size(&self) -> Result<(u32, u32), ApiError> {
        if self.bytes.len() > MAX_PHOTO_BYTES {
            return Err(ApiError::bad_request("PHOTO_SAVE_FILE_INVALID"));
        }
        let (width, height) =
            image_size(&self.bytes).ok_or_else(|| ApiError::bad_request("IMAGE_PROCESS_FAILED"))?;
        let (long, short) = (width.max(height), width.min(height).max(1));
        if width + height > MAX_PHOTO_SIDES || long / short > MAX_PHOTO_RATIO {
            return Err(ApiError::bad_request("PHOTO_INVALID_DIMENSIONS"));
        }
        Ok((width, height))
    }
}

/// The dimensions in a PNG's header or a JPEG's frame marker.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) && bytes.get(12..16)? == b"IHDR" {
        let word = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        return Some((word(16)?, word(20)?));
    }
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    // JPEG: walk the segments to a start-of-frame (SOF0..SOF15 but DHT, JPG, DAC).
    let mut at = 2;
    while at + 9 < bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let height = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]);
            let width = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]);
            return Some((width.into(), height.into()));
        }
        at += 2 + length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Upload {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 6, 0, 0, 0]);
        Upload {
            file_name: Some("chart.png".into()),
            mime_type: Some("image/png".into()),
            bytes: bytes.into(),
        }
    }

    #[test]
    fn a_photo_is_an_image_of_sane_dimensions() {
        assert_eq!(png(1200, 700).photo_size().unwrap(), (1200, 700));
        let refused = |upload: Upload| upload.photo_size().unwrap_err().description;
        assert_eq!(
            refused(png(9000, 2000)),
            "Bad Request: PHOTO_INVALID_DIMENSIONS"
        );
        assert_eq!(
            refused(png(2100, 100)),
            "Bad Request: PHOTO_INVALID_DIMENSIONS"
        );
        let text = Upload {
            bytes: Bytes::from_static(b"user_id,outcome\n"),
            ..png(1, 1)
        };
        assert_eq!(refused(text), "Bad Request: IMAGE_PROCESS_FAILED");
    }

    #[test]
    fn a_jpeg_frame_gives_its_size() {
        // SOI, an APP0 segment of 16 bytes, then SOF0 with 480 x 640.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        jpeg.extend([0; 14]);
        jpeg.extend([0xFF, 0xC0, 0, 17, 8, 0x01, 0xE0, 0x02, 0x80, 3]);
        jpeg.extend([0; 12]);
        assert_eq!(image_size(&jpeg), Some((640, 480)));
    }
}
