//! Which chunk blobs the namespace names: those of every current object, every version and
//! every part of an upload in progress. What the renewal pass keeps paid for
//! ([`crate::retention`]).

use std::collections::BTreeSet;

use redb::ReadableTable as _;
use redstuff::BlobId;

use super::versions::VersionRecord;
use super::{ObjectRecord, record_format};
use crate::GatewayError;
use crate::db::{Db, OBJECTS, PARTS, VERSIONS, decode};

impl Db {
    /// Every chunk blob a current object, a version or an uploaded part names, read in one
    /// transaction.
    pub fn referenced_blobs(&self) -> Result<BTreeSet<BlobId>, GatewayError> {
        const ACTION: &str = "reading the blobs objects name";
        let transaction = self.read(ACTION)?;
        let mut blobs = BTreeSet::new();
        let mut add = |object: ObjectRecord| blobs.extend(object.chunks.iter().map(|chunk| chunk.blob_id));
        let objects = transaction.open_table(OBJECTS).map_err(GatewayError::database(ACTION))?;
        for entry in objects.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let (bucket, key) = name.value();
            add(record_format::decode_object(bytes.value(), || format!("object {bucket}/{key}"))?);
        }
        let versions = transaction.open_table(VERSIONS).map_err(GatewayError::database(ACTION))?;
        for entry in versions.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let version: VersionRecord = decode(bytes.value(), || format!("version of {:?}", name.value()))?;
            version.object.into_iter().for_each(&mut add);
        }
        let parts = transaction.open_table(PARTS).map_err(GatewayError::database(ACTION))?;
        for entry in parts.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let (id, number) = name.value();
            let part = record_format::decode_part(bytes.value(), || format!("part {number} of upload {id}"))?;
            blobs.extend(part.chunks.iter().map(|chunk| chunk.blob_id));
        }
        Ok(blobs)
    }
}
