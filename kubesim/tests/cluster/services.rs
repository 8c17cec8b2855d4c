//! Services: ClusterIP allocation, NodePort allocation, and a taken port refused.

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::{Sim, namespace};

fn service(name: &str, kind: &str, node_port: Option<i32>) -> Service {
    let mut port = json!({"port": 80, "targetPort": 8080});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": name}, "ports": [port]},
    }))
    .expect("a valid service")
}

#[tokio::test]
async fn node_ports_are_unique_and_a_taken_one_is_refused() -> anyhow::Result<()> {
    let sim = Sim::start().await?;
    let ns = namespace(&sim.client, "svc").await?;
    let api = Api::<Service>::namespaced(sim.client.clone(), &ns);
    let plain = api
        .create(&PostParams::default(), &service("plain", "ClusterIP", None))
        .await?;
    let ip = plain.spec.unwrap().cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");

    let a = api
        .create(&PostParams::default(), &service("a", "NodePort", None))
        .await?;
    let b = api
        .create(&PostParams::default(), &service("b", "NodePort", None))
        .await?;
    let port = |s: &Service| {
        s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
            .node_port
            .unwrap()
    };
    let (pa, pb) = (port(&a), port(&b));
    assert!((30000..=32767).contains(&pa) && (30000..=32767).contains(&pb));
    assert_ne!(pa, pb);
    assert_ne!(
        a.spec.as_ref().unwrap().cluster_ip,
        b.spec.as_ref().unwrap().cluster_ip
    );

    let chosen = api
        .create(
            &PostParams::default(),
            &service("chosen", "NodePort", Some(31999)),
        )
        .await?;
    assert_eq!(port(&chosen), 31999);
    let taken = api
        .create(
            &PostParams::default(),
            &service("taken", "NodePort", Some(31999)),
        )
        .await;
    match taken {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert_eq!(s.reason, "Invalid");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(api.get_opt("taken").await?.is_none());

    // A LoadBalancer is provisioned at once.
    let lb = api
        .create(&PostParams::default(), &service("lb", "LoadBalancer", None))
        .await?;
    assert!(port(&lb) >= 30000);
    let provisioned = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        kube::runtime::wait::await_condition(
            api.clone(),
            "lb",
            kube::runtime::wait::conditions::is_service_loadbalancer_provisioned(),
        ),
    )
    .await??;
    assert!(provisioned.is_some());
    sim.handle.shutdown().await?;
    Ok(())
}
