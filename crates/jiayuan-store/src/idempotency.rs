//! `Idempotency-Key` bookkeeping: the first answer to a create, kept so a retry with the same key
//! gets the same answer instead of a second object.
//!
//! A key is reserved (status 0, in flight) before the create runs, completed with the answer
//! after it, or released when the answer was an error so that a corrected retry can run. Rows
//! hold hashes only (the caller's scoped key and the request body), never the key or the body
//! of the request; the stored answer is the API's own (already masked) response body.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TryInsertResult};

use crate::entity::idempotency_key;
use crate::error::{StoreError, db};
use crate::store::{Store, finish};

/// What [`Store::reserve_idempotency`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// The key is new: it is now reserved (in flight) for this request.
    Fresh,
    /// The key is reserved by a request that has not completed (or whose process died between
    /// its commit and the completion): the object may or may not exist.
    InFlight,
    /// The key completed with this answer (same request body).
    Done {
        /// The HTTP status of the first answer.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The key was used with another request body.
    Mismatch,
}

impl Store {
    /// Reserves `key_hash` for the request hashed `request_hash` at `now_ms` (INSERT … ON
    /// CONFLICT DO NOTHING with status 0), or reports what holds the key already.
    pub async fn reserve_idempotency(
        &self,
        key_hash: &str,
        request_hash: &str,
        now_ms: i64,
    ) -> Result<Reserve, StoreError> {
        const OP: &str = "reserve idempotency key";
        let model = idempotency_key::ActiveModel {
            key_hash: Set(key_hash.to_owned()),
            request_hash: Set(request_hash.to_owned()),
            status: Set(0),
            body: Set(String::new()),
            created_at: Set(now_ms),
        };
        let txn = self.begin_write(OP).await?;
        let result = async {
            let inserted = idempotency_key::Entity::insert(model)
                .on_conflict_do_nothing_on([idempotency_key::Column::KeyHash])
                .exec_without_returning(&txn)
                .await
                .map_err(db(OP))?;
            if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
                return Ok(Reserve::Fresh);
            }
            let row = idempotency_key::Entity::find_by_id(key_hash.to_owned()).one(&txn).await.map_err(db(OP))?;
            Ok(match row {
                // Released between the insert and the read: the next try is fresh.
                None => Reserve::InFlight,
                Some(r) if r.request_hash != request_hash => Reserve::Mismatch,
                Some(r) if r.status == 0 => Reserve::InFlight,
                Some(r) => Reserve::Done { status: u16::try_from(r.status).unwrap_or(500), body: r.body },
            })
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Stores the answer of the request that reserved `key_hash`.
    pub async fn complete_idempotency(&self, key_hash: &str, status: u16, body: &str) -> Result<(), StoreError> {
        const OP: &str = "complete idempotency key";
        let txn = self.begin_write(OP).await?;
        let result = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::Status, sea_orm::sea_query::Expr::value(i32::from(status)))
            .col_expr(idempotency_key::Column::Body, sea_orm::sea_query::Expr::value(body.to_owned()))
            .filter(idempotency_key::Column::KeyHash.eq(key_hash))
            .exec(&txn)
            .await
            .map(|_| ())
            .map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// Forgets `key_hash` (its request failed, so a corrected retry may run).
    pub async fn release_idempotency(&self, key_hash: &str) -> Result<(), StoreError> {
        const OP: &str = "release idempotency key";
        let txn = self.begin_write(OP).await?;
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::KeyHash.eq(key_hash))
            .exec(&txn)
            .await
            .map(|_| ())
            .map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// Deletes keys created before `older_than_ms`; answers how many.
    pub async fn sweep_idempotency(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        const OP: &str = "sweep idempotency keys";
        let txn = self.begin_write(OP).await?;
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreatedAt.lt(older_than_ms))
            .exec(&txn)
            .await
            .map(|r| r.rows_affected)
            .map_err(db(OP));
        finish(txn, result, OP).await
    }
}
