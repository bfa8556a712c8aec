//! Runs a fake's axum router on `127.0.0.1:0` in a tokio task and stops it on request.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running server: its bound address and the switch that stops it.
///
/// Dropping the handle also stops the server, because the shutdown channel closes.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `router` in a background task.
    ///
    /// Panics if the loopback port cannot be bound: a fake that cannot listen is a broken test.
    pub(crate) async fn spawn(router: Router) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a fake server on 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the fake server");
        let (stop, stopped) = oneshot::channel::<()>();

        tokio::spawn(async move {
            let signal = async {
                // Either an explicit stop or the handle being dropped ends the server.
                let _ = stopped.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await;
        });

        Server {
            addr,
            stop: Mutex::new(Some(stop)),
        }
    }

    /// The address the server is bound to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; requests in flight are finished. Idempotent.
    pub(crate) fn shutdown(&self) {
        let sender = self.stop.lock().expect("server lock poisoned").take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }
}
