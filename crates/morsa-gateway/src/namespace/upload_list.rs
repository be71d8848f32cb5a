//! Listing a bucket's multipart uploads in progress (ListMultipartUploads): by key, and a
//! key's uploads in the order they were created, paged like a version listing (a key marker
//! and an upload-ID marker, [`crate::listing::list_versions`]).

use redb::ReadableTable as _;

use super::{UploadRecord, check_owner};
use crate::GatewayError;
use crate::db::{BUCKETS, Db, UPLOADS, decode};
use crate::listing::{VersionListing, VersionQuery, list_versions};

impl Db {
    /// One page of the uploads in progress in `bucket`, if `owner` owns it: the query's
    /// version-ID marker is an upload ID. Each entry is the upload's ID and record.
    pub fn list_uploads(
        &self,
        bucket: &str,
        owner: &str,
        query: &VersionQuery<'_>,
    ) -> Result<VersionListing<(String, UploadRecord)>, GatewayError> {
        const ACTION: &str = "listing multipart uploads";
        let transaction = self.read(ACTION)?;
        let buckets = transaction.open_table(BUCKETS).map_err(GatewayError::database(ACTION))?;
        check_owner(&buckets, bucket, owner, ACTION)?;
        let uploads = transaction.open_table(UPLOADS).map_err(GatewayError::database(ACTION))?;
        // The table is keyed by upload ID: every upload is read, those of other buckets and
        // before the page's first key passed over.
        let mut found = Vec::new();
        for entry in uploads.iter().map_err(GatewayError::database(ACTION))? {
            let (id, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            let id = id.value().to_string();
            let upload: UploadRecord = decode(bytes.value(), || format!("upload {id}"))?;
            if upload.bucket == bucket && upload.key.as_str() >= query.start() {
                found.push(upload_entry(id, upload));
            }
        }
        found.sort_by(|a, b| (&a.0, a.2.1.created_ms, &a.1).cmp(&(&b.0, b.2.1.created_ms, &b.1)));
        Ok(list_versions(found.into_iter(), query))
    }
}

fn upload_entry(id: String, upload: UploadRecord) -> (String, String, (String, UploadRecord)) {
    (upload.key.clone(), id.clone(), (id, upload))
}
