//! The `images` read model: the catalogue of container images offered for courses.

use events::{DomainEvent, Event, ImagesEvent};
use futures::future::BoxFuture;

use crate::{
    DbError, Pool,
    registry::{Applied, Projection, Tx},
};

pub struct ImageCatalogue;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS images (
        image    text PRIMARY KEY,
        added_at timestamptz NOT NULL,
        last_seq bigint NOT NULL
    );";

const ADD: &str = "
    INSERT INTO images (image, added_at, last_seq) VALUES ($1, $2, $3)
    ON CONFLICT (image) DO UPDATE SET added_at = EXCLUDED.added_at, last_seq = EXCLUDED.last_seq";

const REMOVE: &str = "DELETE FROM images WHERE image = $1";

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
            for applied in events {
                let Event::Images(event) = &applied.event else {
                    continue;
                };
                match event {
                    ImagesEvent::ImageAdded(added) => {
                        let add = tx.prepare_cached(ADD).await?;
                        tx.execute(
                            &add,
                            &[
                                &added.image,
                                &applied.envelope.meta.occurred_at,
                                &(applied.seq as i64),
                            ],
                        )
                        .await?;
                    }
                    ImagesEvent::ImageRemoved(removed) => {
                        let remove = tx.prepare_cached(REMOVE).await?;
                        tx.execute(&remove, &[&removed.image]).await?;
                    }
                }
            }
            Ok(())
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
