//! Integrity checks s3s leaves to us: `Content-MD5` and `x-amz-checksum-*` (CRC32, CRC32C,
//! CRC64NVME, SHA1, SHA256), given as headers or as trailers of an aws-chunked body. The
//! body is hashed as it streams through; nothing is made visible unless every value the
//! client gave matches (`BadDigest` otherwise).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::{S3Error, S3ErrorCode};
use serde::{Deserialize, Serialize};

/// An `x-amz-checksum-*` algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// CRC32 (ISO HDLC).
    Crc32,
    /// CRC32C (Castagnoli).
    Crc32c,
    /// CRC64NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    const ALL: [Algorithm; 5] =
        [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme, Algorithm::Sha1, Algorithm::Sha256];

    /// Its name in S3 (`x-amz-sdk-checksum-algorithm`, `x-amz-checksum-algorithm`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// The header (or trailer) carrying its value.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|algorithm| algorithm.name().eq_ignore_ascii_case(name.trim()))
    }

    fn from_header(header: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|algorithm| algorithm.header().eq_ignore_ascii_case(header.trim()))
    }

    fn enable(self, hasher: &mut ChecksumHasher) {
        match self {
            Algorithm::Crc32 => hasher.crc32 = Some(Default::default()),
            Algorithm::Crc32c => hasher.crc32c = Some(Default::default()),
            Algorithm::Crc64Nvme => hasher.crc64nvme = Some(Default::default()),
            Algorithm::Sha1 => hasher.sha1 = Some(Default::default()),
            Algorithm::Sha256 => hasher.sha256 = Some(Default::default()),
        }
    }

    fn value_of(self, sums: &s3s::dto::Checksum) -> Option<&str> {
        match self {
            Algorithm::Crc32 => sums.checksum_crc32.as_deref(),
            Algorithm::Crc32c => sums.checksum_crc32c.as_deref(),
            Algorithm::Crc64Nvme => sums.checksum_crc64nvme.as_deref(),
            Algorithm::Sha1 => sums.checksum_sha1.as_deref(),
            Algorithm::Sha256 => sums.checksum_sha256.as_deref(),
        }
    }
}

/// A checksum an object or part was uploaded with, verified: base64 of the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Base64 of its digest.
    pub value: String,
}

/// What a request says its body's digests are (or will be, in its trailer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// The decoded `Content-MD5`.
    md5: Option<[u8; 16]>,
    /// The algorithm, with its value if it came as a header (else it comes as a trailer).
    checksum: Option<(Algorithm, Option<String>)>,
}

impl Declared {
    /// Reads `Content-MD5`, `x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm` and
    /// `x-amz-trailer` from `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, S3Error> {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let md5 = match text("content-md5") {
            None => None,
            Some(value) => {
                let bytes =
                    BASE64.decode(value.trim()).ok().and_then(|bytes| <[u8; 16]>::try_from(bytes).ok());
                Some(bytes.ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidDigest,
                        "The Content-MD5 you specified is not valid.",
                    )
                })?)
            }
        };
        let mut given = Algorithm::ALL.into_iter().filter_map(|algorithm| {
            text(algorithm.header()).map(|value| (algorithm, Some(value.trim().to_string())))
        });
        let mut checksum = given.next();
        if given.next().is_some() {
            return Err(invalid(
                "Expecting a single x-amz-checksum- header. Multiple checksum types are not allowed.",
            ));
        }
        if checksum.is_none()
            && let Some(trailer) = text("x-amz-trailer")
        {
            let algorithm = Algorithm::from_header(trailer)
                .ok_or_else(|| invalid("The x-amz-trailer header names no supported checksum."))?;
            checksum = Some((algorithm, None));
        }
        if checksum.is_none()
            && let Some(name) =
                text("x-amz-sdk-checksum-algorithm").or_else(|| text("x-amz-checksum-algorithm"))
        {
            // An algorithm without a value is one the client computes but did not send:
            // nothing to check, but the digest is kept for later reads.
            let algorithm =
                Algorithm::parse(name).ok_or_else(|| invalid("Unsupported checksum algorithm."))?;
            checksum = Some((algorithm, None));
        }
        Ok(Declared { md5, checksum })
    }

    /// A hasher for the body: MD5 (the ETag) and the declared algorithm.
    pub fn hasher(&self) -> BodyHasher {
        let mut sums = ChecksumHasher::default();
        if let Some((algorithm, _)) = &self.checksum {
            algorithm.enable(&mut sums);
        }
        BodyHasher { md5: Md5::new(), sums }
    }

    /// Checks the body's digests against what was declared, in the headers or in `trailers`
    /// (the body's trailer, read once the body is consumed); answers the verified checksum to
    /// keep.
    pub fn verify(
        &self,
        digests: &Digests,
        trailers: Option<&HeaderMap>,
    ) -> Result<Option<StoredChecksum>, S3Error> {
        if let Some(md5) = self.md5
            && md5 != digests.md5
        {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        let Some((algorithm, header_value)) = &self.checksum else { return Ok(None) };
        let computed = algorithm.value_of(&digests.sums).unwrap_or_default().to_string();
        let given = header_value.clone().or_else(|| {
            let value = trailers?.get(algorithm.header())?.to_str().ok()?;
            Some(value.trim().to_string())
        });
        match given {
            Some(given) if given != computed => Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", algorithm.name()),
            )),
            _ => Ok(Some(StoredChecksum { algorithm: *algorithm, value: computed })),
        }
    }
}

fn invalid(message: &'static str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// Hashes a body as it streams through.
pub struct BodyHasher {
    md5: Md5,
    sums: ChecksumHasher,
}

impl BodyHasher {
    /// Hashes `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sums.update(data);
    }

    /// The digests.
    pub fn finish(self) -> Digests {
        Digests { md5: self.md5.finalize(), sums: self.sums.finalize() }
    }
}

/// A body's digests.
#[derive(Debug, Clone)]
pub struct Digests {
    /// Its MD5 (the ETag of a single upload).
    pub md5: [u8; 16],
    /// The declared algorithm's digest, base64.
    pub sums: s3s::dto::Checksum,
}

/// The checksum fields of S3 outputs for `checksum`.
pub fn output_fields(checksum: Option<&StoredChecksum>) -> s3s::dto::Checksum {
    let mut fields = s3s::dto::Checksum::default();
    if let Some(checksum) = checksum {
        let value = Some(checksum.value.clone());
        match checksum.algorithm {
            Algorithm::Crc32 => fields.checksum_crc32 = value,
            Algorithm::Crc32c => fields.checksum_crc32c = value,
            Algorithm::Crc64Nvme => fields.checksum_crc64nvme = value,
            Algorithm::Sha1 => fields.checksum_sha1 = value,
            Algorithm::Sha256 => fields.checksum_sha256 = value,
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn digests(declared: &Declared, body: &[u8]) -> Digests {
        let mut hasher = declared.hasher();
        hasher.update(body);
        hasher.finish()
    }

    #[test]
    fn known_digests_pass_and_wrong_ones_are_bad_digests() {
        // Published values for "hello world": MD5 XrY7u+Ae7tCTyyK7j1rNww==, CRC32 DUoRhQ==,
        // CRC32C yZRlqg==, SHA-256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=.
        let body = b"hello world";
        for (name, value) in [
            ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("x-amz-checksum-crc32c", "yZRlqg=="),
            ("x-amz-checksum-sha256", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="),
        ] {
            let declared = Declared::from_headers(&headers(&[(name, value)])).unwrap();
            declared
                .verify(&digests(&declared, body), None)
                .unwrap_or_else(|error| panic!("{name}: {error:?}"));
            let error = declared.verify(&digests(&declared, b"hello worle"), None).unwrap_err();
            assert_eq!(*error.code(), S3ErrorCode::BadDigest, "{name}");
        }
        let error = Declared::from_headers(&headers(&[("content-md5", "not base64")])).unwrap_err();
        assert_eq!(*error.code(), S3ErrorCode::InvalidDigest);
    }

    #[test]
    fn a_trailing_checksum_is_checked_once_the_body_is_read() {
        let declared =
            Declared::from_headers(&headers(&[("x-amz-trailer", "x-amz-checksum-crc32")])).unwrap();
        let trailers = |value: &str| headers(&[("x-amz-checksum-crc32", value)]);
        let sums = digests(&declared, b"hello world");
        let kept = declared.verify(&sums, Some(&trailers("DUoRhQ=="))).unwrap();
        assert_eq!(kept, Some(StoredChecksum { algorithm: Algorithm::Crc32, value: "DUoRhQ==".into() }));
        let error = declared.verify(&sums, Some(&trailers("AAAAAA=="))).unwrap_err();
        assert_eq!(*error.code(), S3ErrorCode::BadDigest);
    }
}
