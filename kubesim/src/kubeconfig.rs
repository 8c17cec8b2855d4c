//! The kubeconfig clients load: one cluster at `http://ADDR`, a user with no
//! credentials, one context, set current.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::Error;

/// `$GANTRY_STATE_DIR/kubeconfig`, with `GANTRY_STATE_DIR` defaulting to `.gantry`.
pub fn default_path() -> PathBuf {
    let dir = std::env::var_os("GANTRY_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".gantry"));
    dir.join("kubeconfig")
}

pub fn render(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: http://{addr}
contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: kubesim
    namespace: default
current-context: kubesim
users:
- name: kubesim
  user: {{}}
preferences: {{}}
"
    )
}

/// Writes the kubeconfig atomically (temp file + rename), creating its directory.
pub fn write(path: &Path, addr: SocketAddr) -> Result<(), Error> {
    let err = |source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("kubesim-tmp");
    std::fs::write(&tmp, render(addr)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
