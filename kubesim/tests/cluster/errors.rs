//! Bad input gets the right Status and changes nothing.

use serde_json::{Value, json};

use crate::{Sim, namespace};

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test]
async fn bad_requests_get_a_status_and_change_nothing() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "bad").await?;
    let deployments = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    // Let the controllers settle, then record the resourceVersion.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = sim.resource_version().await?;

    let (code, body) = sim
        .raw("POST", &deployments, "application/json", b"{\"metadata\": ")
        .await?;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");

    let (code, body) = sim
        .raw(
            "POST",
            &deployments,
            "application/yaml",
            b"metadata: [unclosed",
        )
        .await?;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");

    let (code, body) = sim
        .raw(
            "POST",
            &deployments,
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\xff\xff\xff",
        )
        .await?;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");

    let bad_name = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "Not_A_Name"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}}},
    });
    let (code, body) = sim
        .raw(
            "POST",
            &deployments,
            "application/json",
            bad_name.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 422);
    assert_status(&body, 422, "Invalid");
    assert_eq!(
        body["details"]["causes"][0]["field"], "metadata.name",
        "{body}"
    );

    let mismatch = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mismatch"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}}},
    });
    let (code, body) = sim
        .raw(
            "POST",
            &deployments,
            "application/json",
            mismatch.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 422);
    assert_status(&body, 422, "Invalid");
    assert_eq!(
        body["details"]["causes"][0]["field"], "spec.template.metadata.labels",
        "{body}"
    );

    let missing = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "empty"}, "spec": {}});
    let (code, body) = sim
        .raw(
            "POST",
            &deployments,
            "application/json",
            missing.to_string().as_bytes(),
        )
        .await?;
    assert_eq!(code, 422);
    assert_status(&body, 422, "Invalid");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"spec.selector") && fields.contains(&"spec.template.spec.containers"),
        "{body}"
    );

    let (code, body) = sim
        .raw(
            "POST",
            &format!("{deployments}/some-name"),
            "application/json",
            b"{}",
        )
        .await?;
    assert_eq!(code, 405);
    assert_status(&body, 405, "MethodNotAllowed");

    let (code, body) = sim
        .raw(
            "PATCH",
            &format!("/api/v1/namespaces/{ns}"),
            "text/plain",
            b"{}",
        )
        .await?;
    assert_eq!(code, 415);
    assert_status(&body, 415, "UnsupportedMediaType");

    let (code, body) = sim
        .raw(
            "GET",
            &format!("{deployments}?watch=true&resourceVersion=banana"),
            "",
            b"",
        )
        .await?;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");

    let (code, body) = sim.raw("GET", "/apis/batch/v1/jobs", "", b"").await?;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");
    let (code, body) = sim.raw("GET", "/api/v2/pods", "", b"").await?;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");

    let (code, body) = sim
        .raw("GET", &format!("{deployments}/nope"), "", b"")
        .await?;
    assert_eq!(code, 404);
    assert_status(&body, 404, "NotFound");

    let (code, body) = sim
        .raw(
            "GET",
            &format!("{deployments}?labelSelector=a+in+(b"),
            "",
            b"",
        )
        .await?;
    assert_eq!(code, 400);
    assert_status(&body, 400, "BadRequest");

    assert_eq!(
        sim.resource_version().await?,
        before,
        "a rejected request changed the store"
    );
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn discovery_and_version_answer() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let (code, v) = sim.raw("GET", "/version", "", b"").await?;
    assert_eq!(code, 200);
    assert_eq!(v["major"], "1");
    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps/v1",
        "/apis/apps/v1/",
        "/openapi/v3",
        "/openapi/v3/apis/apps/v1",
    ] {
        let (code, v) = sim.raw("GET", path, "", b"").await?;
        assert_eq!(code, 200, "{path}: {v}");
    }
    let (_, v) = sim.raw("GET", "/api/v1", "", b"").await?;
    let pods = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap()
        .clone();
    assert_eq!(pods["shortNames"], json!(["po"]));
    let version = sim.client.apiserver_version().await?;
    assert_eq!(version.major, "1");
    sim.handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn tables_for_kubectl_get() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code, v) = sim
        .raw_accepting("GET", "/api/v1/nodes", "", accept, b"")
        .await?;
    assert_eq!(code, 200);
    assert_eq!(v["kind"], "Table");
    let columns: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "Status", "Roles", "Age", "Version"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert_eq!(v["rows"][0]["cells"][1], "Ready");

    let (_, v) = sim
        .raw_accepting("GET", "/apis/apps/v1/deployments", "", accept, b"")
        .await?;
    let columns: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "Ready", "Up-to-date", "Available", "Age"]);
    let (_, v) = sim
        .raw_accepting("GET", "/api/v1/pods", "", accept, b"")
        .await?;
    let columns: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "Ready", "Status", "Restarts", "Age"]);
    sim.handle.shutdown().await?;
    Ok(())
}
