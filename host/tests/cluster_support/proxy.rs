//! A TCP proxy on loopback that a test can cut, to partition one host process from the API
//! server the way a network partition does: once cut, nothing gets through in either
//! direction, but no connection is closed either (requests hang instead of failing fast), and
//! new connections are accepted and never forwarded.
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    /// `true` once cut; dropping it releases every held connection.
    cut: watch::Sender<bool>,
    accept: AbortHandle,
}

/// Holds `streams` open, forwarding nothing, until the proxy is dropped.
async fn hold<T>(streams: T, mut cut: watch::Receiver<bool>) {
    while cut.changed().await.is_ok() {}
    drop(streams);
}

impl CuttableProxy {
    /// Forwards connections to its loopback address to `upstream` until cut.
    pub async fn start(upstream: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, watching) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let cut = watching.clone();
                let mut cut_seen = watching.clone();
                tokio::spawn(async move {
                    let already_cut = *cut.borrow();
                    if already_cut {
                        return hold(inbound, cut).await;
                    }
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async move { let _ = cut_seen.wait_for(|cut| *cut).await; } => {
                            hold((inbound, outbound), cut).await
                        }
                    }
                });
            }
        })
        .abort_handle();
        CuttableProxy { addr, cut, accept }
    }

    /// From now on nothing gets through.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
