//! A minimal huashu client: subscribe to a conversation, send one buyer message, print the
//! suggestions. `cargo run --example client -- <agent token> [message] [ws url]`

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let token = args
        .next()
        .ok_or("usage: client <agent token> [message] [ws url]")?;
    let text = args.next().unwrap_or_else(|| "亲,我的快递到哪了".into());
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:7700/v1/ws".into());
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("huashu.v1, bearer.{token}").parse()?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    for frame in [
        serde_json::json!({"type": "subscribe", "conversation": "demo-buyer"}),
        serde_json::json!({"type": "customer_message", "conversation": "demo-buyer", "text": text}),
    ] {
        ws.send(Message::text(frame.to_string())).await?;
    }
    let deadline = std::time::Duration::from_secs(10);
    while let Ok(Some(msg)) = tokio::time::timeout(deadline, ws.next()).await {
        if let Message::Text(t) = msg? {
            let v: serde_json::Value = serde_json::from_str(&t)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            if v["type"] == "suggestions" || v["type"] == "error" {
                break;
            }
        }
    }
    Ok(())
}
