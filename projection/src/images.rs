//! The `images` read model: the catalogue of container images offered for courses.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{DomainEvent, Event, ImagesEvent};
use futures::future::BoxFuture;

use crate::{
    DbError, Pool,
    pipeline::{Pipeline, params},
    registry::{Applied, Projection, Tx},
};

pub struct ImageCatalogue;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS images (
        image    text PRIMARY KEY,
        added_at timestamptz NOT NULL,
        last_seq bigint NOT NULL
    );";

// A batch leaves each image added or removed: one upsert and one delete for all of them.
const ADD: &str = "
    INSERT INTO images (image, added_at, last_seq)
    SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[])
    ON CONFLICT (image) DO UPDATE SET added_at = EXCLUDED.added_at, last_seq = EXCLUDED.last_seq";

const REMOVE: &str = "DELETE FROM images WHERE image = ANY($1::text[])";

impl Projection for ImageCatalogue {
    fn name(&self) -> &'static str {
        "image_catalogue"
    }

    fn aggregates(&self) -> &'static [&'static str] {
        &[ImagesEvent::AGGREGATE]
    }

    fn schema(&self) -> &'static str {
        SCHEMA
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Tx<'a>,
        events: &'a [Applied],
    ) -> BoxFuture<'a, Result<(), tokio_postgres::Error>> {
        Box::pin(async move {
            // Each image as the batch leaves it (`None`: removed).
            let mut images: HashMap<&str, Option<(DateTime<Utc>, i64)>> = HashMap::new();
            for applied in events {
                let Event::Images(event) = &applied.event else {
                    continue;
                };
                match event {
                    ImagesEvent::ImageAdded(added) => images.insert(
                        &added.image,
                        Some((applied.envelope.meta.occurred_at, applied.seq as i64)),
                    ),
                    ImagesEvent::ImageRemoved(removed) => images.insert(&removed.image, None),
                };
            }
            let (mut added, mut at, mut last, mut removed) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (image, state) in images {
                match state {
                    Some((when, seq)) => {
                        added.push(image);
                        at.push(when);
                        last.push(seq);
                    }
                    None => removed.push(image),
                }
            }
            let mut pipeline = Pipeline::new(tx);
            if !added.is_empty() {
                pipeline.push(ADD, params![added, at, last]).await?;
            }
            if !removed.is_empty() {
                pipeline.push(REMOVE, params![removed]).await?;
            }
            pipeline.run().await
        })
    }
}

/// Every image of the catalogue, by name.
pub async fn image_list(pool: &Pool) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    let statement = client
        .prepare_cached("SELECT image FROM images ORDER BY image")
        .await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
