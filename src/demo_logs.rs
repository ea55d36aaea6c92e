//! Deterministic generator of realistic NDJSON log events, mirroring
//! `shared/bench/gen_logs.py`: same fields in the same order, same value
//! vocabularies and the same distributions (severity weights, Pareto-skewed
//! services and tenants, the 14 body templates, 60% `trace_id`, 50%
//! `attributes`).
//!
//! Output is *not* byte-identical to the Python script: reproducing CPython's
//! Mersenne Twister and its `randrange` bit-consumption would buy nothing for
//! benchmarks, so a small xoshiro256** is used instead. Random draws are still
//! made in the same order as the script so the two stay easy to compare.

use std::fmt::{self, Write};

const SERVICES: [&str; 20] = [
    "api-gateway",
    "auth",
    "billing",
    "cart",
    "catalog",
    "checkout",
    "datanode",
    "namenode",
    "email",
    "frontend",
    "inventory",
    "kafka-broker",
    "ledger",
    "notifications",
    "orders",
    "payments",
    "recommendation",
    "search",
    "shipping",
    "users",
];
/// Cumulative weights out of 100; the script draws from a 100-entry list
/// built from the weights 70/15/8/7, which this reproduces exactly.
const SEVERITIES: [(&str, u64); 4] = [("INFO", 70), ("WARN", 85), ("ERROR", 93), ("DEBUG", 100)];
const SEVERITY_TOTAL: u64 = 100;
const ERROR_SEVERITY: &str = "ERROR";
// GET is repeated on purpose: the script weights it 3/6.
const METHODS: [&str; 6] = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: [&str; 10] = [
    "/api/v1/orders",
    "/api/v1/users/{id}",
    "/api/v1/cart",
    "/health",
    "/api/v2/search",
    "/api/v1/payments/{id}/capture",
    "/static/app.js",
    "/login",
    "/logout",
    "/api/v1/items/{id}",
];
const USERS: [&str; 19] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];
const ERRORS: [&str; 8] = [
    "connection reset by peer",
    "deadline exceeded",
    "broken pipe",
    "no route to host",
    "too many open files",
    "permission denied",
    "disk quota exceeded",
    "checksum mismatch",
];
const HTTP_STATUSES: [u16; 14] = [
    200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 500, 502, 503,
];
const DECLINE_REASONS: [&str; 4] = [
    "insufficient funds",
    "card expired",
    "fraud suspected",
    "issuer unavailable",
];
const UPSTREAM_PORTS: [u16; 4] = [443, 8080, 9200, 5432];
/// ERROR events only ever use these templates (failed login, declined
/// payment, upstream failure, exception), as in the script.
const ERROR_TEMPLATES: [u64; 4] = [3, 7, 11, 13];
const BODY_TEMPLATES: u64 = 14;
const HOSTS: u64 = 200;
const ATTR_STATUSES: [u16; 4] = [200, 200, 404, 500];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const MAX_TENANT: u64 = 100;

const MICROS_PER_SEC: f64 = 1_000_000.0;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `SplitMix64` step; used only to expand the user's seed into xoshiro state,
/// because xoshiro must not start from (or near) an all-zero state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: small, fast, and statistically far better than needed here.
#[derive(Clone, Debug)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` without modulo bias (Lemire's multiply-and-reject).
    /// `n` must be non-zero.
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0) has no valid result");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            // Low half below the threshold marks the over-represented slice.
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Python's `randrange(lo, hi)`: uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// Uniform in `[0, 1)` with 53 random bits, like Python's `random()`.
    fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Python's `expovariate`; `1 - u` keeps the log argument in `(0, 1]`.
    fn expovariate(&mut self, lambd: f64) -> f64 {
        -(1.0 - self.unit_f64()).ln() / lambd
    }

    /// Python's `paretovariate`: always `>= 1` and finite, since `1 - u > 0`.
    fn paretovariate(&mut self, alpha: f64) -> f64 {
        1.0 / (1.0 - self.unit_f64()).powf(1.0 / alpha)
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // usize -> u64 is lossless on every supported target.
        &items[self.below(items.len() as u64) as usize]
    }

    /// Python's `random() < p`, the script's way of flipping a biased coin.
    fn chance(&mut self, p: f64) -> bool {
        self.unit_f64() < p
    }
}

/// Adapter that JSON-escapes everything written through it, so body
/// templates can be formatted straight into the output with `write!`
/// instead of going through a temporary string.
struct JsonEscaper<'a>(&'a mut String);

impl Write for JsonEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut run_start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Splitting only at ASCII bytes keeps every slice on a char boundary.
            self.0.push_str(&s[run_start..i]);
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.push_str(escape);
            }
            run_start = i + 1;
        }
        self.0.push_str(&s[run_start..]);
        Ok(())
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a proleptic
/// Gregorian (year, month, day). Valid for the whole `i64` day range we use.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are range-limited by construction (see the bracketed comments).
    (year, month as u32, day as u32)
}

/// Writes `micros` (since the Unix epoch, UTC) as RFC 3339 with exactly six
/// fractional digits and a `Z`, the format the script's `strftime` produces.
fn write_timestamp<W: Write>(out: &mut W, micros: i64) -> fmt::Result {
    // Euclidean split so instants before 1970 still get a positive time of day.
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / 1_000_000;
    let frac = in_day % 1_000_000;
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Python's `f"10.{randrange(256)}.{randrange(256)}.{randrange(1, 255)}"`.
fn write_ip<W: Write>(out: &mut W, r: &mut Rng) -> fmt::Result {
    let (a, b, c) = (r.below(256), r.below(256), r.range(1, 255));
    write!(out, "10.{a}.{b}.{c}")
}

/// Deterministic generator of realistic log events (same shape as shared/bench/gen_logs.py).
#[derive(Clone, Debug)]
pub struct LogGenerator {
    rng: Rng,
    start_unix_micros: i64,
    /// Log time elapsed since `start_unix_micros`, kept fractional. The script
    /// rounds every gap to whole microseconds, which silently inflates or
    /// collapses the rate once gaps near 1µs; carrying the fraction keeps the
    /// mean rate exact at any `rate_per_sec` while staying monotonic.
    elapsed_micros: f64,
    mean_gap_micros: f64,
}

impl LogGenerator {
    /// `start_unix_micros`: timestamp of the first event's base time; `rate_per_sec`: mean events per second of log time.
    #[must_use]
    pub fn new(seed: u64, start_unix_micros: i64, rate_per_sec: f64) -> LogGenerator {
        // A non-positive or NaN rate would make time run backwards or stall.
        debug_assert!(
            rate_per_sec > 0.0,
            "rate_per_sec must be positive, got {rate_per_sec}"
        );
        LogGenerator {
            rng: Rng::new(seed),
            start_unix_micros,
            elapsed_micros: 0.0,
            mean_gap_micros: MICROS_PER_SEC / rate_per_sec,
        }
    }

    /// Appends one NDJSON line (a compact JSON object followed by '\n') to `out`.
    pub fn write_next_line(&mut self, out: &mut String) {
        let res = self.write_line(out);
        // fmt::Write for String never fails, so there is no error to surface.
        debug_assert!(res.is_ok(), "formatting into a String cannot fail");
    }

    fn write_line(&mut self, out: &mut String) -> fmt::Result {
        let r = &mut self.rng;
        // Like the script, the first event already sits one gap after the start.
        self.elapsed_micros += r.expovariate(1.0) * self.mean_gap_micros;
        // Saturating f64 -> i64 cast; floor so a timestamp never runs ahead of
        // the true elapsed time, which is what keeps successive ones ordered.
        let ts = self
            .start_unix_micros
            .saturating_add(self.elapsed_micros.floor() as i64);

        let sev_roll = r.below(SEVERITY_TOTAL);
        let severity = SEVERITIES
            .iter()
            .find(|&&(_, cum)| sev_roll < cum)
            .map_or(SEVERITIES[0].0, |&(name, _)| name);
        // Pareto(1.2) >= 1, so the truncated value minus one is a valid index
        // skewed heavily toward the head of the list; the tail is clamped.
        let service_idx = (r.paretovariate(1.2) as usize - 1).min(SERVICES.len() - 1);
        let host = r.below(HOSTS);
        let tenant = (r.paretovariate(1.0) as u64).min(MAX_TENANT);

        out.push_str("{\"timestamp\":\"");
        write_timestamp(out, ts)?;
        // The fixed vocabularies below contain nothing JSON would escape.
        write!(
            out,
            "\",\"severity_text\":\"{severity}\",\"service_name\":\"{}\",\"host\":\"host-{host:03}\",\"tenant_id\":{tenant},\"body\":\"",
            SERVICES[service_idx]
        )?;
        write_body(&mut JsonEscaper(out), r, severity)?;
        out.push('"');

        if r.chance(0.6) {
            let trace = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
            write!(out, ",\"trace_id\":\"{trace:032x}\"")?;
        }
        if r.chance(0.5) {
            let method = r.choice(&METHODS);
            let status = r.choice(&ATTR_STATUSES);
            let duration = r.range(1, 5000);
            let region = r.choice(&REGIONS);
            write!(
                out,
                ",\"attributes\":{{\"http.method\":\"{method}\",\"http.status_code\":{status},\"duration_ms\":{duration},\"region\":\"{region}\"}}"
            )?;
        }
        out.push_str("}\n");
        Ok(())
    }
}

/// The script's `body()`: one of 14 templates, written unescaped to `w`.
/// Arguments are drawn into locals first so the draw order matches the
/// script's left-to-right f-string evaluation.
fn write_body<W: Write>(w: &mut W, r: &mut Rng, severity: &str) -> fmt::Result {
    // Drawn even for ERROR (then discarded), as the script does.
    let mut k = r.below(BODY_TEMPLATES);
    if severity == ERROR_SEVERITY {
        k = *r.choice(&ERROR_TEMPLATES);
    }
    match k {
        0 => {
            let method = r.choice(&METHODS);
            let path = r.choice(&PATHS);
            // The script draws the id even for paths without a placeholder.
            let id = r.below(100_000);
            let status = r.choice(&HTTP_STATUSES);
            write_ip(w, r)?;
            let user = r.choice(&USERS);
            write!(w, " - {user} \"{method} ")?;
            match path.split_once("{id}") {
                Some((head, tail)) => write!(w, "{head}{id}{tail}")?,
                None => w.write_str(path)?,
            }
            let bytes = r.range(100, 90_000);
            let ms = r.range(1, 3000);
            write!(w, " HTTP/1.1\" {status} {bytes} {ms}ms")
        }
        1 => {
            let pool = r.below(1_000_000_000);
            write!(w, "PacketResponder: BP-{pool}-")?;
            write_ip(w, r)?;
            let ts = r.below(1_000_000_000_000);
            let blk = r.below(10_000_000_000);
            let gen = r.below(1_000_000);
            write!(
                w,
                "-{ts}:blk_{blk}_{gen}, type=HAS_DOWNSTREAM_IN_PIPELINE terminating"
            )
        }
        2 => {
            let blk = r.below(10_000_000_000);
            write!(w, "Receiving block blk_{blk} src: /")?;
            write_ip(w, r)?;
            let port = r.range(1024, 65535);
            write!(w, ":{port} dest: /")?;
            write_ip(w, r)?;
            w.write_str(":50010")
        }
        3 | 4 => {
            let verb = if k == 3 {
                "Failed password"
            } else {
                "Accepted publickey"
            };
            let user = r.choice(&USERS);
            write!(w, "{verb} for {user} from ")?;
            write_ip(w, r)?;
            let port = r.range(1024, 65535);
            write!(w, " port {port} ssh2")
        }
        5 => {
            let user = r.choice(&USERS);
            let session = r.next_u64();
            write!(
                w,
                "user {user} logged in successfully session={session:016x}"
            )
        }
        6 => {
            let order = r.below(100_000_000);
            let customer = r.below(1_000_000);
            // Integer cents print the same digits as the script's `n / 100:.2f`.
            let cents = r.range(1, 100_000);
            write!(
                w,
                "order {order} created for customer {customer} total={}.{:02} USD",
                cents / 100,
                cents % 100
            )
        }
        7 => {
            let id = r.next_u64() >> 16;
            let reason = r.choice(&DECLINE_REASONS);
            write!(w, "payment {id:012x} declined: {reason}")
        }
        8 => {
            let key = r.below(1_000_000);
            let ms = r.range(1, 500);
            write!(w, "cache miss for key product:{key} took {ms}ms")
        }
        9 => {
            let pause = r.range(1, 400);
            let before = r.range(100, 8000);
            let after = r.range(100, 8000);
            write!(
                w,
                "GC pause (G1 Evacuation Pause) young {pause}ms heap {before}M->{after}M"
            )
        }
        10 => {
            let offset = r.below(1_000_000_000);
            let partition = r.below(64);
            let group = r.below(8);
            write!(
                w,
                "Committed offset {offset} for partition events-{partition} in consumer group indexer-{group}"
            )
        }
        11 => {
            w.write_str("upstream request to ")?;
            write_ip(w, r)?;
            let port = r.choice(&UPSTREAM_PORTS);
            let err = r.choice(&ERRORS);
            let ms = r.range(1, 30_000);
            let retry = r.below(5);
            write!(w, ":{port} failed: {err} after {ms}ms retry={retry}")
        }
        12 => {
            let job = r.below(100);
            let ms = r.range(1, 60_000);
            let items = r.below(1_000_000);
            write!(
                w,
                "scheduled job reindex-{job} finished in {ms}ms processed={items} items"
            )
        }
        _ => {
            let err = r.choice(&ERRORS);
            let service = r.choice(&SERVICES);
            let line = r.range(20, 900);
            write!(w, "java.lang.IllegalStateException: {err} at com.example.")?;
            // The script strips dashes to make a Java package name.
            for part in service.split('-') {
                w.write_str(part)?;
            }
            write!(w, ".Handler.handle(Handler.java:{line})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_2026: i64 = 1_767_225_600_000_000;

    /// Just enough JSON to check the generator's output without serde.
    #[derive(Debug, PartialEq)]
    enum Json {
        Str(String),
        Num(String),
        Obj(Vec<(String, Json)>),
    }

    impl Json {
        fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        fn keys(&self) -> Vec<&str> {
            match self {
                Json::Obj(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
                _ => Vec::new(),
            }
        }
        fn str(&self) -> &str {
            match self {
                Json::Str(s) => s,
                other => panic!("expected string, got {other:?}"),
            }
        }
        fn int(&self) -> i64 {
            match self {
                Json::Num(s) => s.parse().expect("integer"),
                other => panic!("expected number, got {other:?}"),
            }
        }
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn parse_document(s: &str) -> Result<Json, String> {
            let mut p = Parser {
                b: s.as_bytes(),
                i: 0,
            };
            let v = p.value()?;
            if p.i != p.b.len() {
                return Err(format!("trailing bytes at {}", p.i));
            }
            Ok(v)
        }
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }
        fn expect(&mut self, c: u8) -> Result<(), String> {
            if self.peek() == Some(c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", c as char, self.i))
            }
        }
        fn value(&mut self) -> Result<Json, String> {
            match self.peek() {
                Some(b'{') => self.object(),
                Some(b'"') => self.string().map(Json::Str),
                Some(b'-' | b'0'..=b'9') => self.number(),
                other => Err(format!("unexpected {other:?} at {}", self.i)),
            }
        }
        fn object(&mut self) -> Result<Json, String> {
            self.expect(b'{')?;
            let mut fields = Vec::new();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Json::Obj(fields));
            }
            loop {
                let k = self.string()?;
                self.expect(b':')?;
                let v = self.value()?;
                fields.push((k, v));
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b'}') => {
                        self.i += 1;
                        return Ok(Json::Obj(fields));
                    }
                    other => return Err(format!("unexpected {other:?} in object at {}", self.i)),
                }
            }
        }
        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            while matches!(
                self.peek(),
                Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            ) {
                self.i += 1;
            }
            let s = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
            s.parse::<f64>()
                .map_err(|e| format!("bad number {s:?}: {e}"))?;
            Ok(Json::Num(s.to_owned()))
        }
        fn string(&mut self) -> Result<String, String> {
            self.expect(b'"')?;
            let mut out = String::new();
            loop {
                let c = self.peek().ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => return Ok(out),
                    b'\\' => {
                        let e = self.peek().ok_or("dangling escape")?;
                        self.i += 1;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'u' => {
                                let hex = self.b.get(self.i..self.i + 4).ok_or("short \\u")?;
                                let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                                let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                out.push(char::from_u32(cp).ok_or("surrogate")?);
                                self.i += 4;
                            }
                            _ => return Err(format!("bad escape at {}", self.i)),
                        }
                    }
                    0x00..=0x1f => return Err(format!("raw control byte at {}", self.i)),
                    _ => {
                        // Copy the whole UTF-8 sequence starting at this byte.
                        let start = self.i - 1;
                        let mut end = self.i;
                        while end < self.b.len() && (self.b[end] & 0xC0) == 0x80 {
                            end += 1;
                        }
                        out.push_str(
                            std::str::from_utf8(&self.b[start..end]).map_err(|e| e.to_string())?,
                        );
                        self.i = end;
                    }
                }
            }
        }
    }

    fn lines(seed: u64, rate: f64, n: usize) -> Vec<String> {
        let mut g = LogGenerator::new(seed, START_2026, rate);
        (0..n)
            .map(|_| {
                let mut s = String::new();
                g.write_next_line(&mut s);
                s
            })
            .collect()
    }

    fn parse_line(line: &str) -> Json {
        let body = line.strip_suffix('\n').expect("line ends with newline");
        assert!(!body.contains('\n'), "embedded newline in {line:?}");
        Parser::parse_document(body).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn timestamp_string(micros: i64) -> String {
        let mut s = String::new();
        write_timestamp(&mut s, micros).expect("String write");
        s
    }

    /// Inverse of `civil_from_days` (Hinnant's `days_from_civil`) to read
    /// timestamps back.
    fn parse_timestamp(s: &str) -> i64 {
        assert_eq!(s.len(), 27, "{s}");
        let b = s.as_bytes();
        assert_eq!(
            (b[4], b[7], b[10], b[13], b[16], b[19], b[26]),
            (b'-', b'-', b'T', b':', b':', b'.', b'Z'),
            "{s}"
        );
        let n = |a: usize, z: usize| -> i64 { s[a..z].parse().expect("digits") };
        let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
        secs * 1_000_000 + n(20, 26)
    }

    #[test]
    fn known_instants_format_correctly() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (START_2026, "2026-01-01T00:00:00.000000Z"),
            (1_709_210_096_789_012, "2024-02-29T12:34:56.789012Z"),
            (951_868_800_000_000, "2000-03-01T00:00:00.000000Z"),
            (4_107_542_400_000_000, "2100-03-01T00:00:00.000000Z"),
            (4_107_542_400_000_000 - 1, "2100-02-28T23:59:59.999999Z"),
            (-11_676_096_000_000_000, "1600-01-01T00:00:00.000000Z"),
        ];
        for (micros, want) in cases {
            assert_eq!(timestamp_string(micros), want, "micros={micros}");
            assert_eq!(parse_timestamp(want), micros, "{want}");
        }
    }

    #[test]
    fn date_conversion_round_trips_over_centuries() {
        // Every day from 1600 to 2400 covers all leap-year rules.
        for days in -135_140..157_000i64 {
            let micros = days * MICROS_PER_DAY + 43_210_123_456;
            assert_eq!(parse_timestamp(&timestamp_string(micros)), micros);
        }
    }

    #[test]
    fn same_seed_same_output_different_seed_different_output() {
        let a = lines(7, 1000.0, 2000);
        assert_eq!(a, lines(7, 1000.0, 2000));
        let b = lines(8, 1000.0, 2000);
        assert_ne!(a, b);
        assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() > 1900);
    }

    #[test]
    fn appends_without_clearing() {
        let mut g = LogGenerator::new(1, START_2026, 1000.0);
        let mut out = String::from("prefix\n");
        g.write_next_line(&mut out);
        g.write_next_line(&mut out);
        let mut parts = out.split_terminator('\n');
        assert_eq!(parts.next(), Some("prefix"));
        assert_eq!(parts.count(), 2);
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn every_line_is_a_json_object_with_the_scripts_fields() {
        const BASE: [&str; 6] = [
            "timestamp",
            "severity_text",
            "service_name",
            "host",
            "tenant_id",
            "body",
        ];
        const ATTR_KEYS: [&str; 4] = ["http.method", "http.status_code", "duration_ms", "region"];
        let mut saw_escaped_quote = false;
        for line in lines(42, 1000.0, 20_000) {
            assert!(line.starts_with("{\"timestamp\":\""), "{line}");
            assert!(line.ends_with("}\n"), "{line}");
            let doc = parse_line(&line);
            let keys = doc.keys();
            assert_eq!(keys[..6], BASE, "{line}");
            let rest = &keys[6..];
            assert!(
                [
                    &[][..],
                    &["trace_id"],
                    &["attributes"],
                    &["trace_id", "attributes"]
                ]
                .contains(&rest),
                "unexpected keys {rest:?} in {line}"
            );

            let sev = doc.get("severity_text").expect("severity").str();
            assert!(["INFO", "WARN", "ERROR", "DEBUG"].contains(&sev), "{line}");
            assert!(SERVICES.contains(&doc.get("service_name").expect("service").str()));
            let host = doc.get("host").expect("host").str();
            let host_n: u32 = host
                .strip_prefix("host-")
                .expect("host- prefix")
                .parse()
                .expect("host number");
            assert!(host.len() == 8 && host_n < 200, "{host}");
            let tenant = doc.get("tenant_id").expect("tenant").int();
            assert!((1..=100).contains(&tenant), "{line}");
            let body = doc.get("body").expect("body").str();
            assert!(!body.is_empty());
            if body.contains('"') {
                saw_escaped_quote = true;
                assert!(
                    line.contains("\\\"GET ")
                        || line.contains("\\\"POST ")
                        || line.contains("\\\"PUT ")
                        || line.contains("\\\"DELETE ")
                );
            }
            if sev == "ERROR" {
                assert!(
                    [
                        "Failed password for ",
                        "payment ",
                        "upstream request to ",
                        "java.lang.IllegalStateException: "
                    ]
                    .iter()
                    .any(|p| body.starts_with(p)),
                    "ERROR body from a non-error template: {body}"
                );
            }
            if let Some(t) = doc.get("trace_id") {
                let t = t.str();
                assert_eq!(t.len(), 32, "{t}");
                assert!(
                    t.bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                    "{t}"
                );
            }
            if let Some(a) = doc.get("attributes") {
                assert_eq!(a.keys(), ATTR_KEYS);
                assert!(["GET", "POST", "PUT", "DELETE"]
                    .contains(&a.get("http.method").expect("method").str()));
                assert!([200, 404, 500].contains(&a.get("http.status_code").expect("status").int()));
                assert!((1..5000).contains(&a.get("duration_ms").expect("duration").int()));
                assert!(REGIONS.contains(&a.get("region").expect("region").str()));
            }
        }
        assert!(
            saw_escaped_quote,
            "template 0 (access log with quotes) never appeared"
        );
    }

    #[test]
    fn all_fourteen_templates_appear() {
        let prefixes = [
            " - ",
            "PacketResponder: BP-",
            "Receiving block blk_",
            "Failed password for ",
            "Accepted publickey for ",
            "user ",
            "order ",
            "payment ",
            "cache miss for key product:",
            "GC pause (G1 Evacuation Pause) young ",
            "Committed offset ",
            "upstream request to ",
            "scheduled job reindex-",
            "java.lang.IllegalStateException: ",
        ];
        let mut seen = [0u32; 14];
        for line in lines(3, 1000.0, 20_000) {
            let doc = parse_line(&line);
            let body = doc.get("body").expect("body").str();
            let idx = if body.starts_with("10.") {
                Some(0)
            } else {
                prefixes.iter().position(|p| body.starts_with(p))
            };
            seen[idx.unwrap_or_else(|| panic!("unknown template: {body}"))] += 1;
        }
        // Non-ERROR docs pick uniformly among 14, so each template gets
        // roughly 20_000 * 0.92 / 14 ≈ 1300 even before ERROR's extra share.
        assert!(seen.iter().all(|&c| c > 1000), "{seen:?}");
    }

    #[test]
    fn timestamps_are_monotonic_with_the_requested_mean_rate() {
        for (rate, n) in [(1000.0, 10_000usize), (1_000_000.0, 10_000), (20.0, 10_000)] {
            let ts: Vec<i64> = lines(11, rate, n)
                .iter()
                .map(|l| parse_timestamp(parse_line(l).get("timestamp").expect("timestamp").str()))
                .collect();
            assert!(ts[0] >= START_2026);
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "timestamps went backwards at rate {rate}"
            );
            let mean_gap = (ts[n - 1] - START_2026) as f64 / n as f64;
            let want = 1e6 / rate;
            assert!(
                (mean_gap - want).abs() < 0.1 * want,
                "rate {rate}: mean gap {mean_gap}µs, want {want}µs"
            );
        }
    }

    fn frac(count: usize, n: usize) -> f64 {
        count as f64 / n as f64
    }

    fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got:.4}, want {want:.4} ± {tol}"
        );
    }

    #[test]
    fn field_distributions_match_the_script() {
        const N: usize = 100_000;
        let mut sev = [0usize; 4];
        let (mut traces, mut attrs, mut gateway, mut tenant1, mut tenant100) = (0, 0, 0, 0, 0);
        for line in lines(42, 1000.0, N) {
            let doc = parse_line(&line);
            let s = doc.get("severity_text").expect("severity").str();
            sev[SEVERITIES
                .iter()
                .position(|&(name, _)| name == s)
                .expect("known severity")] += 1;
            traces += usize::from(doc.get("trace_id").is_some());
            attrs += usize::from(doc.get("attributes").is_some());
            gateway +=
                usize::from(doc.get("service_name").expect("service").str() == "api-gateway");
            let tenant = doc.get("tenant_id").expect("tenant").int();
            tenant1 += usize::from(tenant == 1);
            tenant100 += usize::from(tenant == 100);
        }
        for (i, want) in [0.70, 0.15, 0.08, 0.07].into_iter().enumerate() {
            assert_near(SEVERITIES[i].0, frac(sev[i], N), want, 0.02);
        }
        assert_near("trace_id", frac(traces, N), 0.6, 0.02);
        assert_near("attributes", frac(attrs, N), 0.5, 0.02);
        // P(pareto(a) < 2) = 1 - 2^-a; P(pareto(1) >= 100) = 1/100.
        assert_near("api-gateway", frac(gateway, N), 1.0 - 2f64.powf(-1.2), 0.02);
        assert_near("tenant 1", frac(tenant1, N), 0.5, 0.02);
        assert_near("tenant 100", frac(tenant100, N), 0.01, 0.005);
    }

    #[test]
    fn escaper_handles_quotes_backslashes_and_controls() {
        let mut out = String::new();
        write!(
            JsonEscaper(&mut out),
            "a\"b\\c\nd\te\u{1}f\u{1f}g\u{8}\u{c}\ré"
        )
        .expect("String write");
        assert_eq!(out, "a\\\"b\\\\c\\nd\\te\\u0001f\\u001fg\\b\\f\\ré");
        let quoted = format!("\"{out}\"");
        assert_eq!(
            Parser::parse_document(&quoted),
            Ok(Json::Str(
                "a\"b\\c\nd\te\u{1}f\u{1f}g\u{8}\u{c}\ré".to_owned()
            ))
        );
    }

    #[test]
    fn rng_helpers_stay_in_range() {
        let mut r = Rng::new(0);
        for n in [1u64, 2, 3, 7, 200, 1 << 40, u64::MAX] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
        let mut hits = [0u32; 6];
        for _ in 0..60_000 {
            hits[r.below(6) as usize] += 1;
            let u = r.unit_f64();
            assert!((0.0..1.0).contains(&u));
            assert!(r.paretovariate(1.2) >= 1.0);
            assert!(r.expovariate(1.0) >= 0.0);
            let x = r.range(1024, 65535);
            assert!((1024..65535).contains(&x));
        }
        assert!(
            hits.iter().all(|&h| (9_000..11_000).contains(&h)),
            "{hits:?}"
        );
        let mean = (0..100_000).map(|_| r.expovariate(2.0)).sum::<f64>() / 100_000.0;
        assert_near("expovariate(2) mean", mean, 0.5, 0.01);
    }
}
