// Package notify delivers alert notifications to webhooks and to syslog
// collectors (a SIEM), through an outbox in the database so that none is
// lost to a restart and a slow or absent receiver never holds up the alert
// workflow.
//
// The alert process builds Notifications and hands them to a Dispatcher's
// Enqueue, which writes one outbox row per notification and sink and
// returns. The Dispatcher's Run sends due rows to each Sink in batches and
// retries failures with exponential backoff and jitter, honouring a
// receiver's Retry-After, until the sink takes them, refuses them for good
// (ErrPermanent) or they pass the maximum age; given-up notifications are
// logged as errors and counted in reckon_notify_dropped_total. Delivery is
// at least once: receivers dedupe by the notification id.
//
// # Webhook wire format
//
//	POST <url>
//	Content-Type: application/json
//	X-Reckon-Timestamp: 1718000000
//	X-Reckon-Signature: sha256=<64 lowercase hex digits>
//
//	{"notifications":[{"id":"6f1c…","event":"opened","alert_id":"a-42",
//	  "kind":"check_failed","severity":"high","asset_id":"as-7",
//	  "title":"TLS 1.0 enabled","condition":"firing","workflow":"new",
//	  "team":"netops","detail":{"check":"tls-min-version"},
//	  "at":"2024-06-10T06:13:20Z","group":"netops/high","count":3}]}
//
// The signature is the lowercase hex HMAC-SHA256, keyed with the shared
// secret, of the timestamp header, a dot and the raw body:
// HMAC(secret, "1718000000." + body). It is sent only when a secret is set.
// Receivers recompute it over the bytes they received (Verify does so in
// constant time), refuse timestamps more than a few minutes from their clock,
// and answer 2xx once the batch is stored. 408, 429 and 5xx (with an
// optional Retry-After) and network errors or timeouts are retried; any
// other status is permanent, and a batch refused so is tried one
// notification at a time before each refused one is given up.
//
// # Syslog wire format
//
// One RFC 5424 message per notification, over UDP (a datagram each), TCP or
// TLS (octet-counting frames, "LEN SP MSG", RFC 6587 and RFC 5425):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - CEF:0|reckon|reckon|VERSION|KIND:CHECK|TITLE|CEFSEV|EXTENSIONS
//
//	<131>1 2024-06-10T06:13:20.000000Z scanner1 reckon 4242 opened - CEF:0|reckon|reckon|v1.4.0|check_failed:tls-min-version|TLS 1.0 enabled|8|rt=1718000000000 externalId=a-42 act=opened cat=check_failed cs1Label=asset cs1=as-7 cs2Label=team cs2=netops cs3Label=condition cs3=firing cs4Label=workflow cs4=new cs5Label=notification cs5=6f1c… cs6Label=group cs6=netops/high cnt=3 msg=check\=tls-min-version
//
// PRI is facility × 8 + severity, the facility local0 (16) unless set, the
// severity critical 2 (crit), high 3 (err), medium 4 (warning), low 5
// (notice), info 6 (info). MSGID is the event; structured data is "-"; the
// MSG carries no BOM.
//
// CEF: the signature id is the kind, a colon and Detail["check"] (or
// Detail["check_id"], else the kind again); the name is the title (at most
// 512 bytes); the CEF severity is info 1, low 3, medium 5, high 8,
// critical 10 (unknown: 5). Header fields escape \ and | with a backslash
// and turn line breaks into spaces; extension values escape \ and = with a
// backslash and write line breaks as \n and \r. Extensions, each left out
// when empty: rt (ms since the epoch), externalId (alert id), act (event),
// cat (kind), cs1 asset, cs2 team, cs3 condition, cs4 workflow, cs5
// notification id, cs6 group (each with its csNLabel), cnt (count) and msg:
// Detail["message"], or the detail as "key=value; …", at most 1023 bytes.
package notify
