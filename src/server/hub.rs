//! Fan-out of suggestions to the subscribers of a conversation.
//!
//! Invariant: a slow subscriber never slows the others. Each connection has a bounded
//! queue; a push is `try_send` of an already-serialized frame (one serialization, shared
//! bytes); a subscriber whose queue is full is dropped from the hub and told to close.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

/// Frames queued per connection before it counts as too slow.
pub const QUEUE: usize = 256;

/// One connection's way in.
#[derive(Debug, Clone)]
pub struct Outlet {
    pub conn: u64,
    pub tx: mpsc::Sender<Utf8Bytes>,
    /// Notified when the connection must close because it could not keep up.
    pub kick: Arc<Notify>,
}

type Topic = (String, String);

#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, Vec<Outlet>>>,
    /// Every connection of a shop, for shop-wide notices (`phrasebook_updated`).
    shops: Mutex<HashMap<String, Vec<Outlet>>>,
}

impl Hub {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, Vec<Outlet>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes; subscribing twice is the same as once. Returns the subscriber count.
    pub fn subscribe(&self, shop: &str, conversation: &str, outlet: Outlet) -> usize {
        let mut topics = self.topics();
        let subs = topics
            .entry((shop.to_string(), conversation.to_string()))
            .or_default();
        if !subs.iter().any(|o| o.conn == outlet.conn) {
            subs.push(outlet);
        }
        subs.len()
    }

    pub fn unsubscribe(&self, shop: &str, conversation: &str, conn: u64) {
        let mut topics = self.topics();
        let key = (shop.to_string(), conversation.to_string());
        if let Some(subs) = topics.get_mut(&key) {
            subs.retain(|o| o.conn != conn);
            if subs.is_empty() {
                topics.remove(&key);
            }
        }
    }

    /// Removes a connection from every conversation it subscribed to.
    pub fn remove(&self, shop: &str, conversations: &[String], conn: u64) {
        for c in conversations {
            self.unsubscribe(shop, c, conn);
        }
    }

    /// Whether `conn` subscribes to the conversation.
    pub fn is_subscribed(&self, shop: &str, conversation: &str, conn: u64) -> bool {
        self.topics()
            .get(&(shop.to_string(), conversation.to_string()))
            .is_some_and(|s| s.iter().any(|o| o.conn == conn))
    }

    /// Queues `frame` for every subscriber; returns how many got it. Subscribers whose
    /// queue is full or closed are removed (and kicked).
    pub fn publish(&self, shop: &str, conversation: &str, frame: &Utf8Bytes) -> usize {
        let mut topics = self.topics();
        let key = (shop.to_string(), conversation.to_string());
        let Some(subs) = topics.get_mut(&key) else {
            return 0;
        };
        let mut delivered = 0;
        subs.retain(|o| match o.tx.try_send(frame.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(conn = o.conn, shop, "subscriber too slow; disconnecting");
                o.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if subs.is_empty() {
            topics.remove(&key);
        }
        delivered
    }

    /// Registers a connection for the shop's notices.
    pub fn join_shop(&self, shop: &str, outlet: Outlet) {
        let mut shops = self.shops.lock().unwrap_or_else(|p| p.into_inner());
        shops.entry(shop.to_string()).or_default().push(outlet);
    }

    pub fn leave_shop(&self, shop: &str, conn: u64) {
        let mut shops = self.shops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = shops.get_mut(shop) {
            list.retain(|o| o.conn != conn);
            if list.is_empty() {
                shops.remove(shop);
            }
        }
    }

    /// Queues `frame` for every connection of the shop; returns how many got it. A full
    /// queue kicks the connection, as for pushes.
    pub fn broadcast_shop(&self, shop: &str, frame: &Utf8Bytes) -> usize {
        let mut shops = self.shops.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = shops.get_mut(shop) else {
            return 0;
        };
        let mut delivered = 0;
        list.retain(|o| match o.tx.try_send(frame.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                o.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        delivered
    }

    /// Number of conversations with subscribers.
    pub fn len(&self) -> usize {
        self.topics().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlet(conn: u64, cap: usize) -> (Outlet, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        (
            Outlet {
                conn,
                tx,
                kick: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    #[tokio::test]
    async fn fan_out_and_slow_subscriber_is_dropped() {
        let hub = Hub::default();
        let (a, mut ra) = outlet(1, 8);
        let (slow, _rs) = outlet(2, 1);
        let kicked = slow.kick.clone();
        assert_eq!(hub.subscribe("s", "c", a.clone()), 1);
        assert_eq!(hub.subscribe("s", "c", a), 1, "idempotent");
        assert_eq!(hub.subscribe("s", "c", slow), 2);
        let f = Utf8Bytes::from_static("x");
        assert_eq!(hub.publish("s", "c", &f), 2);
        assert_eq!(hub.publish("s", "c", &f), 1, "slow one is full and dropped");
        kicked.notified().await;
        assert!(!hub.is_subscribed("s", "c", 2));
        assert_eq!(ra.recv().await.as_deref(), Some("x"));
        assert_eq!(hub.publish("s", "other", &f), 0);
        assert_eq!(hub.publish("t", "c", &f), 0, "shops are separate");
        hub.remove("s", &["c".to_string()], 1);
        assert!(hub.is_empty());
    }
}
