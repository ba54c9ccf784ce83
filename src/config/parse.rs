//! The walk over the span-preserving TOML tree: every section, key and value is checked, and
//! every problem is recorded with the line of the key or value it concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{
    check_algorithm, parse_algorithm, parse_duration, parse_lifetime, AclEntry, Config, KeyRole,
    KeySpec, Keystore, KeystoreBackend, Lifetime, Nsec3Policy, OnUpstreamExpire, PinSource, Policy,
    Problem, Problems, SerialPolicy, Server, TsigAlgorithm, TsigKey, UpdatePolicy, ZoneConfig,
    ZoneSource, DEFAULT_DNS_PORT, DEFAULT_KEYSTORE, DEFAULT_POLICY, INSECURE_POLICY,
    MAX_NSEC3_ITERATIONS, MAX_NSEC3_SALT_LEN, MAX_TTL, MIN_TSIG_SECRET_LEN, SHORT_LIFETIME_WARNING,
    UPDATE_TYPES,
};
use super::{format_duration, normalise_name};

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Collects problems and turns byte offsets into line numbers.
struct Ctx<'a> {
    path: &'a Path,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

impl<'a> Ctx<'a> {
    fn new(text: &str, path: &'a Path) -> Ctx<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Ctx {
            path,
            line_starts,
            problems: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    fn line(&self, span: &Span) -> usize {
        self.line_starts
            .partition_point(|&s| s <= span.start)
            .max(1)
    }

    fn error(&mut self, span: &Span, message: impl Into<String>) {
        let p = Problem::error(message)
            .in_file(self.path)
            .at_line(self.line(span));
        self.problems.push(p);
    }

    fn warn(&mut self, span: &Span, message: impl Into<String>) {
        let p = Problem::warning(message)
            .in_file(self.path)
            .at_line(self.line(span));
        self.problems.push(p);
    }

    fn zone_error(&mut self, span: &Span, zone: &str, message: impl Into<String>) {
        let p = Problem::error(message)
            .in_file(self.path)
            .at_line(self.line(span))
            .for_zone(zone);
        self.problems.push(p);
    }

    fn zone_warn(&mut self, span: &Span, zone: &str, message: impl Into<String>) {
        let p = Problem::warning(message)
            .in_file(self.path)
            .at_line(self.line(span))
            .for_zone(zone);
        self.problems.push(p);
    }

    fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| !p.is_warning())
    }

    // ---- typed accessors: each reports a type error and returns None ----

    fn table<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    &v.span(),
                    format!("{what} must be a table, not {}", article(other)),
                );
                None
            }
        }
    }

    fn string<'t>(&mut self, v: &'t Value<'_>, key: &str) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.error(
                    &v.span(),
                    format!("`{key}` must be a string, not {}", article(other)),
                );
                None
            }
        }
    }

    fn nonempty_string<'t>(&mut self, v: &'t Value<'_>, key: &str) -> Option<&'t str> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            self.error(&v.span(), format!("`{key}` must not be empty"));
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    &v.span(),
                    format!("`{key}` must be true or false, not {}", article(other)),
                );
                None
            }
        }
    }

    fn integer(&mut self, v: &Value<'_>, key: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(&v.span(), format!("`{key}`: integer out of range"));
                    None
                }
            },
            other => {
                self.error(
                    &v.span(),
                    format!("`{key}` must be an integer, not {}", article(other)),
                );
                None
            }
        }
    }

    /// A duration: a string (see `parse_duration`) or a non-negative integer of seconds.
    fn duration(&mut self, v: &Value<'_>, key: &str) -> Option<u64> {
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(why) => {
                    self.error(&v.span(), format!("`{key}`: {why}"));
                    None
                }
            },
            DeValue::Integer(_) => {
                let n = self.integer(v, key)?;
                match u64::try_from(n) {
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.error(&v.span(), format!("`{key}` must not be negative"));
                        None
                    }
                }
            }
            other => {
                self.error(
                    &v.span(),
                    format!(
                        "`{key}` must be a duration such as \"1h\" or \"P14D\", not {}",
                        article(other)
                    ),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    fn string_list<'t>(&mut self, v: &'t Value<'_>, key: &str) -> Option<Vec<(&'t str, Span)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.as_ref(), v.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.as_ref(), item.span())),
                        other => {
                            self.error(
                                &item.span(),
                                format!("`{key}` entries must be strings, not {}", article(other)),
                            );
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            other => {
                self.error(
                    &v.span(),
                    format!("`{key}` must be a list of strings, not {}", article(other)),
                );
                None
            }
        }
    }

    /// A list of socket addresses; a bare IP means port 53 when `default_port` is set.
    fn addr_list(
        &mut self,
        v: &Value<'_>,
        key: &str,
        default_port: Option<u16>,
    ) -> Option<Vec<SocketAddr>> {
        let items = self.string_list(v, key)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (s, span) in items {
            match parse_socket_addr(s, default_port) {
                Ok(a) => {
                    if out.contains(&a) {
                        self.error(&span, format!("`{key}`: {a} is listed twice"));
                        ok = false;
                    } else {
                        out.push(a);
                    }
                }
                Err(why) => {
                    self.error(&span, format!("`{key}`: {why}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Reports a key that is not in `allowed`, with a suggestion for near misses.
    fn unknown_key(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        place: &str,
        allowed: &[&str],
    ) {
        let name = key.get_ref().as_ref();
        self.error(
            &key.span(),
            format!("unknown key `{name}` in {place}{}", suggest(name, allowed)),
        );
    }
}

/// A table's entries in file order (the map itself is sorted by key), so that problems and
/// "already defined" messages follow the file.
fn ordered<'t, 'i>(
    t: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<std::borrow::Cow<'i, str>>, &'t Value<'i>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// "a string", "an integer", ... for type errors.
fn article(v: &DeValue<'_>) -> String {
    let t = v.type_str();
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {t}")
    } else {
        format!("a {t}")
    }
}

/// `; did you mean `x`?` when `name` is close to one of `allowed`.
fn suggest(name: &str, allowed: &[&str]) -> String {
    let norm = name.to_ascii_lowercase().replace('_', "-");
    allowed
        .iter()
        .map(|a| (edit_distance(&norm, a), *a))
        .filter(|(d, a)| *d <= 2.min(a.len() / 2))
        .min()
        .map(|(_, a)| format!("; did you mean `{a}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `IP:port`, `[v6]:port`, or (with a default port) a bare IP or `[v6]`.
pub(super) fn parse_socket_addr(s: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    let t = s.trim();
    let addr = if let Ok(a) = t.parse::<SocketAddr>() {
        a
    } else {
        let bare = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(t);
        match (bare.parse::<IpAddr>(), default_port) {
            (Ok(ip), Some(port)) => SocketAddr::new(ip, port),
            (Ok(_), None) => return Err(format!("{t:?} needs a port: write IP:PORT")),
            (Err(_), _) => {
                return Err(format!(
                    "{t:?} is not an IP address or IP:PORT (host names are not resolved; \
                     write IPv6 with a port as [2001:db8::1]:53)"
                ))
            }
        }
    };
    Ok(addr)
}

/// One ACL entry: an IP address, a CIDR prefix with zero host bits, or `key:NAME`.
pub(super) fn parse_acl_entry(s: &str) -> Result<AclEntry, String> {
    let t = s.trim();
    if let Some(key) = t.strip_prefix("key:") {
        return normalise_name(key)
            .map(AclEntry::Key)
            .map_err(|why| format!("bad key name in {t:?}: {why}"));
    }
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!("{t:?} is not an IP address, a prefix like 192.0.2.0/24, or key:NAME")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{t:?}: prefix length must be 0 to {max}")),
        },
    };
    let entry = AclEntry::Addr(ip, len);
    if !entry.matches_addr(ip) || host_bits_set(ip, len) {
        return Err(format!(
            "{t:?} has host bits set after the /{len} prefix; write the network address"
        ));
    }
    Ok(entry)
}

fn host_bits_set(ip: IpAddr, len: u8) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            len < 32 && v & (u32::MAX >> len) != 0
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            len < 128 && v & (u128::MAX >> len) != 0
        }
    }
}

/// Entry point from `parse_str`.
pub(super) fn parse(text: &str, path: &Path) -> Result<Config, Problems> {
    let mut ctx = Ctx::new(text, path);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // After a syntax error the tree is a guess: report the syntax errors only, the first one
        // on each line (recovery can produce cascades).
        let mut seen = BTreeSet::new();
        for e in &syntax {
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("syntax error")
                .to_string();
            let message = format!("TOML syntax error: {message}");
            match e.span() {
                Some(span) => {
                    let line = ctx.line(&span);
                    if seen.insert(line) {
                        ctx.error(&span, message);
                    }
                }
                None => ctx.problems.push(Problem::error(message).in_file(path)),
            }
        }
        let mut problems = Problems(ctx.problems);
        problems.sort();
        return Err(problems);
    }
    let root = root.get_ref();

    const SECTIONS: &[&str] = &["server", "tsig", "keystore", "policy", "zone"];
    for (k, v) in ordered(root) {
        let name = k.get_ref().as_ref();
        if !SECTIONS.contains(&name) {
            let what = if v.get_ref().is_table() {
                format!("unknown section [{name}]")
            } else {
                format!("unknown key `{name}` at the top level")
            };
            let hint = suggest(name, SECTIONS);
            ctx.error(
                &k.span(),
                format!("{what}{hint} (sections are [server], [tsig.NAME], [keystore.NAME], [policy.NAME], [[zone]])"),
            );
        }
    }

    let server = match root.get("server") {
        Some(v) => parse_server(&mut ctx, v),
        None => Server::default(),
    };
    let tsig = root
        .get("tsig")
        .map(|v| parse_tsig_keys(&mut ctx, v))
        .unwrap_or_default();
    let mut keystores = root
        .get("keystore")
        .map(|v| parse_keystores(&mut ctx, v, &server))
        .unwrap_or_default();
    keystores
        .entry(DEFAULT_KEYSTORE.to_string())
        .or_insert_with(|| Keystore {
            name: DEFAULT_KEYSTORE.to_string(),
            backend: KeystoreBackend::Files {
                directory: server.state_dir.join("keys"),
            },
            line: None,
        });
    // Keystores written in the file, valid or not (see `tsig_names` below).
    let mut keystore_names: BTreeSet<String> = keystores.keys().cloned().collect();
    if let Some(t) = root.get("keystore").and_then(|v| v.get_ref().as_table()) {
        keystore_names.extend(t.iter().map(|(k, _)| k.get_ref().to_string()));
    }
    let mut policies = root
        .get("policy")
        .map(|v| parse_policies(&mut ctx, v, &keystore_names))
        .unwrap_or_default();
    policies
        .entry(DEFAULT_POLICY.to_string())
        .or_insert_with(Policy::default);
    policies
        .entry(INSECURE_POLICY.to_string())
        .or_insert_with(Policy::insecure);
    // Every key name written in [tsig], valid or not: a zone referring to a key whose
    // definition has errors is not also told the key is undefined.
    let tsig_names: BTreeSet<String> = root
        .get("tsig")
        .and_then(|v| v.get_ref().as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(k, _)| normalise_name(k.get_ref()).ok())
                .collect()
        })
        .unwrap_or_default();
    let zones = match root.get("zone") {
        Some(v) => parse_zones(&mut ctx, v, &tsig_names, &policies, root.get("policy")),
        None => Vec::new(),
    };

    let has_errors = ctx.has_errors();
    let (errors, warnings): (Vec<_>, Vec<_>) =
        ctx.problems.into_iter().partition(|p| !p.is_warning());
    if has_errors {
        let mut problems = Problems(errors);
        problems.sort();
        return Err(problems);
    }
    let mut warnings = Problems(warnings);
    warnings.sort();
    Ok(Config {
        path: path.to_path_buf(),
        server,
        tsig,
        keystores,
        policies,
        zones,
        warnings: warnings.0,
    })
}

fn parse_server(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Server {
    let mut server = Server::default();
    let Some(table) = ctx.table(v, "[server]") else {
        return server;
    };
    const KEYS: &[&str] = &["listen", "state-dir", "control", "metrics"];
    let mut control_set = false;
    for (k, v) in ordered(table) {
        let key = k.get_ref().as_ref();
        match key {
            "listen" => {
                if let Some(list) = ctx.addr_list(v, key, Some(DEFAULT_DNS_PORT)) {
                    if list.is_empty() {
                        ctx.error(
                            &v.span(),
                            "`listen` is empty: signet would serve nobody; remove it for the default 127.0.0.1:5353",
                        );
                    } else {
                        server.listen = list;
                    }
                }
            }
            "state-dir" => {
                if let Some(s) = ctx.nonempty_string(v, key) {
                    server.state_dir = PathBuf::from(s);
                }
            }
            "control" => {
                if let Some(s) = ctx.nonempty_string(v, key) {
                    server.control = PathBuf::from(s);
                    control_set = true;
                }
            }
            "metrics" => {
                if let Some(s) = ctx.string(v, key) {
                    match parse_socket_addr(s, None) {
                        Ok(a) => server.metrics = Some(a),
                        Err(why) => ctx.error(&v.span(), format!("`metrics`: {why}")),
                    }
                }
            }
            _ => ctx.unknown_key(k, "[server]", KEYS),
        }
    }
    if !control_set {
        server.control = server.state_dir.join("control.sock");
    }
    if let (Some(m), Some(mv)) = (server.metrics, table.get("metrics")) {
        if server.listen.contains(&m) {
            ctx.error(
                &mv.span(),
                format!("`metrics` {m} is also a `listen` address; give metrics its own port"),
            );
        }
    }
    server
}

fn parse_tsig_keys(ctx: &mut Ctx<'_>, v: &Value<'_>) -> BTreeMap<String, TsigKey> {
    let mut out = BTreeMap::new();
    let Some(table) = ctx.table(v, "[tsig]") else {
        return out;
    };
    for (k, v) in ordered(table) {
        let raw = k.get_ref().as_ref();
        let name = match normalise_name(raw) {
            Ok(n) => Some(n),
            Err(why) => {
                ctx.error(&k.span(), format!("[tsig.{raw}]: bad key name: {why}"));
                None
            }
        };
        let place = format!("[tsig.{raw}]");
        let Some(t) = ctx.table(v, &place) else {
            continue;
        };
        let line = ctx.line(&v.span());
        let mut algorithm = Some(TsigAlgorithm::HmacSha256);
        let mut secret = None;
        for (fk, fv) in ordered(t) {
            let key = fk.get_ref().as_ref();
            match key {
                "algorithm" => {
                    algorithm = None;
                    if let Some(s) = ctx.string(fv, key) {
                        match TsigAlgorithm::from_name(s) {
                            Ok(a) => algorithm = Some(a),
                            Err(why) => ctx.error(&fv.span(), format!("{place}: {why}")),
                        }
                    }
                }
                "secret" => {
                    if let Some(s) = ctx.string(fv, key) {
                        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                        match data_encoding::BASE64.decode(compact.as_bytes()) {
                            Ok(bytes) if bytes.len() < MIN_TSIG_SECRET_LEN => ctx.error(
                                &fv.span(),
                                format!(
                                    "{place}: the secret is {} octets; at least {MIN_TSIG_SECRET_LEN} are required \
                                     (generate one with `openssl rand -base64 32`)",
                                    bytes.len()
                                ),
                            ),
                            Ok(bytes) => secret = Some(bytes),
                            Err(e) => ctx.error(
                                &fv.span(),
                                format!("{place}: the secret is not valid base64: {e}"),
                            ),
                        }
                    }
                }
                _ => ctx.unknown_key(fk, &place, &["algorithm", "secret"]),
            }
        }
        if t.get("secret").is_none() {
            ctx.error(
                &v.span(),
                format!("{place}: missing `secret` (base64; generate one with `openssl rand -base64 32`)"),
            );
        }
        if let (Some(name), Some(algorithm), Some(secret)) = (name, algorithm, secret) {
            if let Some(prev) = out.get(&name) {
                let prev: &TsigKey = prev;
                ctx.error(
                    &k.span(),
                    format!(
                        "{place}: key {name} is already defined at line {}",
                        prev.line
                    ),
                );
                continue;
            }
            out.insert(
                name.clone(),
                TsigKey {
                    name,
                    algorithm,
                    secret,
                    line,
                },
            );
        }
    }
    out
}

fn parse_keystores(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    server: &Server,
) -> BTreeMap<String, Keystore> {
    let mut out = BTreeMap::new();
    let Some(table) = ctx.table(v, "[keystore]") else {
        return out;
    };
    for (k, v) in ordered(table) {
        let name = k.get_ref().as_ref().to_string();
        let place = format!("[keystore.{name}]");
        let Some(t) = ctx.table(v, &place) else {
            continue;
        };
        let line = ctx.line(&v.span());
        let backend_name = match t.get("backend") {
            Some(b) => ctx.string(b, "backend").map(|s| (s, b.span())),
            None => {
                ctx.error(
                    &v.span(),
                    format!("{place}: missing `backend` (\"files\" or \"pkcs11\")"),
                );
                None
            }
        };
        let backend = match backend_name {
            None => None,
            Some(("files", _)) => {
                const KEYS: &[&str] = &["backend", "directory"];
                let mut directory = server.state_dir.join("keys");
                for (fk, fv) in ordered(t) {
                    match fk.get_ref().as_ref() {
                        "backend" => {}
                        "directory" => {
                            if let Some(s) = ctx.nonempty_string(fv, "directory") {
                                directory = PathBuf::from(s);
                            }
                        }
                        _ => ctx.unknown_key(fk, &format!("{place} (backend \"files\")"), KEYS),
                    }
                }
                Some(KeystoreBackend::Files { directory })
            }
            Some(("pkcs11", _)) => {
                const KEYS: &[&str] = &["backend", "module", "token-label", "pin"];
                let mut module = None;
                let mut token_label = None;
                let mut pin = None;
                for (fk, fv) in ordered(t) {
                    let key = fk.get_ref().as_ref();
                    match key {
                        "backend" => {}
                        "module" => module = ctx.nonempty_string(fv, key).map(PathBuf::from),
                        "token-label" => {
                            token_label = ctx.nonempty_string(fv, key).map(str::to_string)
                        }
                        "pin" => {
                            if let Some(s) = ctx.nonempty_string(fv, key) {
                                pin = match parse_pin(s) {
                                    Ok(p) => {
                                        if matches!(p, PinSource::Literal(_)) {
                                            ctx.warn(
                                                &fv.span(),
                                                format!(
                                                    "{place}: the PIN is written in the configuration; \
                                                     prefer \"file:PATH\" (mode 0600) or \"env:VARIABLE\""
                                                ),
                                            );
                                        }
                                        Some(p)
                                    }
                                    Err(why) => {
                                        ctx.error(&fv.span(), format!("{place}: {why}"));
                                        None
                                    }
                                }
                            }
                        }
                        _ => ctx.unknown_key(fk, &format!("{place} (backend \"pkcs11\")"), KEYS),
                    }
                }
                for (key, present) in [
                    ("module", t.get("module").is_some()),
                    ("token-label", t.get("token-label").is_some()),
                    ("pin", t.get("pin").is_some()),
                ] {
                    if !present {
                        ctx.error(&v.span(), format!("{place}: missing `{key}`"));
                    }
                }
                match (module, token_label, pin) {
                    (Some(module), Some(token_label), Some(pin)) => Some(KeystoreBackend::Pkcs11 {
                        module,
                        token_label,
                        pin,
                    }),
                    _ => None,
                }
            }
            Some((other, span)) => {
                ctx.error(
                    &span,
                    format!("{place}: unknown backend {other:?}; use \"files\" or \"pkcs11\""),
                );
                None
            }
        };
        if let Some(backend) = backend {
            out.insert(
                name.clone(),
                Keystore {
                    name,
                    backend,
                    line: Some(line),
                },
            );
        }
    }
    out
}

fn parse_pin(s: &str) -> Result<PinSource, String> {
    if let Some(p) = s.strip_prefix("file:") {
        if p.is_empty() {
            return Err("`pin = \"file:\"` needs a path".into());
        }
        Ok(PinSource::File(PathBuf::from(p)))
    } else if let Some(v) = s.strip_prefix("env:") {
        if v.is_empty() || v.contains('=') || v.contains('\0') {
            return Err(format!("`pin`: {v:?} is not an environment variable name"));
        }
        Ok(PinSource::Env(v.to_string()))
    } else {
        Ok(PinSource::Literal(s.to_string()))
    }
}

/// The `u64` duration field of a policy named by its configuration key.
fn duration_field<'p>(p: &'p mut Policy, key: &str) -> Option<&'p mut u64> {
    Some(match key {
        "dnskey-ttl" => &mut p.dnskey_ttl,
        "max-zone-ttl" => &mut p.max_zone_ttl,
        "publish-safety" => &mut p.publish_safety,
        "retire-safety" => &mut p.retire_safety,
        "purge-keys" => &mut p.purge_keys,
        "signatures-validity" => &mut p.signatures_validity,
        "signatures-validity-dnskey" => &mut p.signatures_validity_dnskey,
        "signatures-refresh" => &mut p.signatures_refresh,
        "signatures-jitter" => &mut p.signatures_jitter,
        "zone-propagation-delay" => &mut p.zone_propagation_delay,
        "parent-ds-ttl" => &mut p.parent_ds_ttl,
        "parent-propagation-delay" => &mut p.parent_propagation_delay,
        _ => return None,
    })
}

const POLICY_KEYS: &[&str] = &[
    "keys",
    "dnskey-ttl",
    "max-zone-ttl",
    "publish-safety",
    "retire-safety",
    "purge-keys",
    "signatures-validity",
    "signatures-validity-dnskey",
    "signatures-refresh",
    "signatures-jitter",
    "zone-propagation-delay",
    "parent-ds-ttl",
    "parent-propagation-delay",
    "nsec3",
    "cds-digest-types",
    "publish-cdnskey",
    "serial",
    "manual-mode",
];

fn parse_policies(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    keystores: &BTreeSet<String>,
) -> BTreeMap<String, Policy> {
    let mut out = BTreeMap::new();
    let Some(table) = ctx.table(v, "[policy]") else {
        return out;
    };
    for (k, v) in ordered(table) {
        let name = k.get_ref().as_ref().to_string();
        let place = format!("[policy.{name}]");
        let Some(t) = ctx.table(v, &place) else {
            continue;
        };
        let base = if name == INSECURE_POLICY {
            Policy::insecure()
        } else {
            Policy::default()
        };
        let mut p = Policy {
            name: name.clone(),
            line: Some(ctx.line(&v.span())),
            ..base
        };
        // Value spans of the keys that were given, for cross-field messages.
        let mut spans: BTreeMap<&str, Span> = BTreeMap::new();
        let mut key_spans: Vec<Span> = Vec::new();
        // Keys whose value had an error: cross-field checks that involve them are skipped.
        let mut failed: BTreeSet<&'static str> = BTreeSet::new();
        for (fk, fv) in ordered(t) {
            let key = fk.get_ref().as_ref();
            let known = POLICY_KEYS.iter().find(|k| **k == key).copied();
            if let (Some(slot), Some(known)) = (duration_field(&mut p, key), known) {
                spans.insert(known, fv.span());
                match ctx.duration(fv, key) {
                    Some(d) => *slot = d,
                    None => {
                        failed.insert(known);
                    }
                }
                continue;
            }
            match key {
                "keys" => {
                    spans.insert("keys", fv.span());
                    match parse_key_specs(ctx, fv, &place, keystores) {
                        Some((keys, sp)) => {
                            p.keys = keys;
                            key_spans = sp;
                        }
                        None => {
                            failed.insert("keys");
                        }
                    }
                }
                "nsec3" => p.nsec3 = parse_nsec3(ctx, fv, &place),
                "cds-digest-types" => {
                    if let Some(d) = parse_digest_types(ctx, fv) {
                        p.cds_digest_types = d;
                    }
                }
                "publish-cdnskey" => {
                    if let Some(b) = ctx.boolean(fv, key) {
                        p.publish_cdnskey = b;
                    }
                }
                "manual-mode" => {
                    if let Some(b) = ctx.boolean(fv, key) {
                        p.manual_mode = b;
                    }
                }
                "serial" => {
                    if let Some(s) = ctx.string(fv, key) {
                        match s.to_ascii_lowercase().as_str() {
                            "increment" => p.serial = SerialPolicy::Increment,
                            "unixtime" => p.serial = SerialPolicy::UnixTime,
                            "dateserial" => p.serial = SerialPolicy::DateSerial,
                            "keep" => p.serial = SerialPolicy::Keep,
                            other => ctx.error(
                                &fv.span(),
                                format!(
                                    "{place}: unknown serial policy {other:?}; use increment, unixtime, dateserial or keep"
                                ),
                            ),
                        }
                    }
                }
                _ => ctx.unknown_key(fk, &place, POLICY_KEYS),
            }
        }
        validate_policy(ctx, &p, &place, &v.span(), &spans, &key_spans, &failed);
        out.insert(name, p);
    }
    out
}

/// The span of the first of `keys` given in the policy, else the policy header.
fn span_of(spans: &BTreeMap<&str, Span>, keys: &[&str], header: &Span) -> Span {
    keys.iter()
        .find_map(|k| spans.get(k).cloned())
        .unwrap_or_else(|| header.clone())
}

fn validate_policy(
    ctx: &mut Ctx<'_>,
    p: &Policy,
    place: &str,
    header: &Span,
    spans: &BTreeMap<&str, Span>,
    key_spans: &[Span],
    failed: &BTreeSet<&str>,
) {
    let d = format_duration;
    // A check runs only when none of the keys it involves had an error of its own.
    let usable = |keys: &[&str]| keys.iter().all(|k| !failed.contains(k));
    for (key, value) in [
        ("dnskey-ttl", p.dnskey_ttl),
        ("max-zone-ttl", p.max_zone_ttl),
        ("parent-ds-ttl", p.parent_ds_ttl),
    ] {
        if value > MAX_TTL {
            ctx.error(
                &span_of(spans, &[key], header),
                format!("{place}: `{key}` is {value}s; a TTL is at most {MAX_TTL}s (RFC 2181 §8)"),
            );
        }
    }
    if !usable(&[
        "signatures-validity",
        "signatures-validity-dnskey",
        "signatures-refresh",
        "signatures-jitter",
    ]) {
        return validate_keys(ctx, p, place, header, spans, key_spans, failed);
    }
    if p.signatures_refresh == 0 {
        ctx.error(
            &span_of(spans, &["signatures-refresh"], header),
            format!("{place}: `signatures-refresh` must not be 0: signatures would expire before they are replaced"),
        );
    }
    let mut refresh_ok = true;
    for (key, validity) in [
        ("signatures-validity", p.signatures_validity),
        ("signatures-validity-dnskey", p.signatures_validity_dnskey),
    ] {
        if p.signatures_refresh >= validity {
            refresh_ok = false;
            ctx.error(
                &span_of(spans, &["signatures-refresh", key], header),
                format!(
                    "{place}: `signatures-refresh` ({}) must be shorter than `{key}` ({}): \
                     signatures would be due for refresh as soon as they are made",
                    d(p.signatures_refresh),
                    d(validity)
                ),
            );
        }
    }
    if refresh_ok
        && p.signatures_refresh > 0
        && p.dnskey_ttl <= MAX_TTL
        && p.max_zone_ttl <= MAX_TTL
        && usable(&["max-zone-ttl", "dnskey-ttl", "zone-propagation-delay"])
    {
        let (ttl_key, ttl) = if p.dnskey_ttl > p.max_zone_ttl {
            ("dnskey-ttl", p.dnskey_ttl)
        } else {
            ("max-zone-ttl", p.max_zone_ttl)
        };
        let need = ttl.saturating_add(p.zone_propagation_delay);
        if p.signatures_refresh < need {
            ctx.error(
                &span_of(
                    spans,
                    &["signatures-refresh", ttl_key, "zone-propagation-delay"],
                    header,
                ),
                format!(
                    "{place}: `signatures-refresh` ({}) must be at least `{ttl_key}` + \
                     `zone-propagation-delay` ({} + {} = {}): a signature is replaced when \
                     `signatures-refresh` of its validity remains, and the replaced one may \
                     still reach resolvers until every secondary has the new version and then \
                     stay cached for its TTL; it would expire in their caches",
                    d(p.signatures_refresh),
                    d(ttl),
                    d(p.zone_propagation_delay),
                    d(need)
                ),
            );
        }
    }
    if refresh_ok {
        let (key, validity) = if p.signatures_validity_dnskey < p.signatures_validity {
            ("signatures-validity-dnskey", p.signatures_validity_dnskey)
        } else {
            ("signatures-validity", p.signatures_validity)
        };
        let room = validity - p.signatures_refresh;
        if p.signatures_jitter >= room {
            ctx.error(
                &span_of(spans, &["signatures-jitter", key, "signatures-refresh"], header),
                format!(
                    "{place}: `signatures-jitter` ({}) must be shorter than `{key}` − `signatures-refresh` \
                     ({} − {} = {}): a signature made with the full jitter would already be due for refresh",
                    d(p.signatures_jitter),
                    d(validity),
                    d(p.signatures_refresh),
                    d(room)
                ),
            );
        }
    }

    validate_keys(ctx, p, place, header, spans, key_spans, failed);
}

/// Coverage per algorithm, then lifetimes against the rollover time.
fn validate_keys(
    ctx: &mut Ctx<'_>,
    p: &Policy,
    place: &str,
    header: &Span,
    spans: &BTreeMap<&str, Span>,
    key_spans: &[Span],
    failed: &BTreeSet<&str>,
) {
    if failed.contains("keys") {
        return;
    }
    let d = format_duration;
    let keys_span = span_of(spans, &["keys"], header);
    if p.name == INSECURE_POLICY {
        if !p.keys.is_empty() {
            ctx.error(
                &keys_span,
                format!(
                    "{place}: the `insecure` policy takes zones insecure and has no keys; \
                     remove `keys` or give this policy another name"
                ),
            );
        }
    } else if p.keys.is_empty() {
        ctx.error(
            &keys_span,
            format!(
                "{place}: `keys` is empty; a policy needs at least one key (e.g. one csk); \
                 to take a zone insecure, give it policy = \"insecure\""
            ),
        );
    }
    let algorithms: BTreeSet<u8> = p.keys.iter().map(|k| k.algorithm).collect();
    for alg in algorithms {
        let name = super::algorithm_name(alg).unwrap_or("?");
        let of_alg = p.keys.iter().filter(|k| k.algorithm == alg);
        let signs_keys = of_alg.clone().any(|k| k.role.signs_keys());
        let signs_zone = of_alg.clone().any(|k| k.role.signs_zone());
        if !signs_keys {
            ctx.error(
                &keys_span,
                format!("{place}: algorithm {name} ({alg}) has no ksk or csk: its DNSKEY set would be unsigned"),
            );
        }
        if !signs_zone {
            ctx.error(
                &keys_span,
                format!("{place}: algorithm {name} ({alg}) has no zsk or csk: the zone would be unsigned with it"),
            );
        }
        for (what, signs) in [
            (
                "signing the DNSKEY set (ksk/csk)",
                KeyRole::signs_keys as fn(KeyRole) -> bool,
            ),
            ("signing the zone (zsk/csk)", KeyRole::signs_zone),
        ] {
            let n = of_alg.clone().filter(|k| signs(k.role)).count();
            if n > 1 {
                ctx.warn(
                    &keys_span,
                    format!(
                        "{place}: algorithm {name} ({alg}) has {n} keys {what}: each is kept and \
                         rolled on its own, which multiplies the DNSKEY set and the signatures"
                    ),
                );
            }
        }
    }
    if !failed.is_empty() {
        // The rollover time depends on every timing parameter.
        return;
    }
    for (i, key) in p.keys.iter().enumerate() {
        if let Lifetime::Secs(life) = key.lifetime {
            let min = p.min_lifetime(key.role);
            let span = key_spans
                .get(i)
                .cloned()
                .unwrap_or_else(|| keys_span.clone());
            if life >= min && life < SHORT_LIFETIME_WARNING {
                ctx.warn(
                    &span,
                    format!(
                        "{place}: {} lifetime {} is shorter than 30 days: the key spends much of \
                         its life in rollovers",
                        key.role,
                        d(life)
                    ),
                );
            }
            if life < min {
                ctx.error(
                    &span,
                    format!(
                        "{place}: {} lifetime {} is shorter than a rollover takes under this policy ({}): \
                         publication + retire intervals from the TTLs, delays and safety margins",
                        key.role,
                        d(life),
                        d(min)
                    ),
                );
            }
        }
    }
}

/// Parses `keys`; returns the specs and, per spec, the span to blame for its lifetime.
fn parse_key_specs(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    place: &str,
    keystores: &BTreeSet<String>,
) -> Option<(Vec<KeySpec>, Vec<Span>)> {
    let DeValue::Array(items) = v.get_ref() else {
        ctx.error(
            &v.span(),
            format!(
                "{place}: `keys` must be a list of tables like {{ role = \"csk\", algorithm = \"ecdsap256sha256\" }}, not {}",
                article(v.get_ref())
            ),
        );
        return None;
    };
    const KEYS: &[&str] = &["role", "algorithm", "lifetime", "keystore"];
    let mut specs = Vec::new();
    let mut spans = Vec::new();
    let mut ok = true;
    for item in items.iter() {
        let Some(t) = ctx.table(item, "each entry of `keys`") else {
            ok = false;
            continue;
        };
        let mut role = None;
        let mut algorithm = None;
        let mut lifetime = Some(Lifetime::Unlimited);
        let mut keystore = Some(DEFAULT_KEYSTORE.to_string());
        let mut lifetime_span = item.span();
        for (fk, fv) in ordered(t) {
            let key = fk.get_ref().as_ref();
            match key {
                "role" => {
                    if let Some(s) = ctx.string(fv, key) {
                        role = match s.to_ascii_lowercase().as_str() {
                            "ksk" => Some(KeyRole::Ksk),
                            "zsk" => Some(KeyRole::Zsk),
                            "csk" => Some(KeyRole::Csk),
                            other => {
                                ctx.error(
                                    &fv.span(),
                                    format!(
                                        "{place}: unknown key role {other:?}; use ksk, zsk or csk"
                                    ),
                                );
                                None
                            }
                        };
                    }
                }
                "algorithm" => {
                    let parsed = match fv.get_ref() {
                        DeValue::String(s) => Some(parse_algorithm(s)),
                        DeValue::Integer(_) => ctx.integer(fv, key).map(|n| {
                            u8::try_from(n)
                                .map_err(|_| format!("algorithm {n} is out of range"))
                                .and_then(check_algorithm)
                        }),
                        other => {
                            ctx.error(
                                &fv.span(),
                                format!(
                                    "{place}: `algorithm` must be a name or a number, not {}",
                                    article(other)
                                ),
                            );
                            None
                        }
                    };
                    match parsed {
                        Some(Ok(a)) => algorithm = Some(a),
                        Some(Err(why)) => ctx.error(&fv.span(), format!("{place}: {why}")),
                        None => {}
                    }
                }
                "lifetime" => {
                    lifetime_span = fv.span();
                    lifetime = match fv.get_ref() {
                        DeValue::String(s) => match parse_lifetime(s) {
                            Ok(l) => Some(l),
                            Err(why) => {
                                ctx.error(&fv.span(), format!("{place}: `lifetime`: {why}"));
                                None
                            }
                        },
                        _ => match ctx.duration(fv, key) {
                            Some(0) => {
                                ctx.error(
                                    &fv.span(),
                                    format!("{place}: a key lifetime of 0 is meaningless: write \"unlimited\""),
                                );
                                None
                            }
                            Some(n) => Some(Lifetime::Secs(n)),
                            None => None,
                        },
                    };
                }
                "keystore" => {
                    keystore = None;
                    if let Some(s) = ctx.string(fv, key) {
                        if keystores.contains(s) {
                            keystore = Some(s.to_string());
                        } else {
                            ctx.error(
                                &fv.span(),
                                format!(
                                    "{place}: keystore {s:?} is not defined; defined: {}",
                                    keystores.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            );
                        }
                    }
                }
                _ => ctx.unknown_key(fk, &format!("{place} `keys` entry"), KEYS),
            }
        }
        if t.get("role").is_none() {
            ctx.error(
                &item.span(),
                format!("{place}: a `keys` entry needs `role` (ksk, zsk or csk)"),
            );
        }
        if t.get("algorithm").is_none() {
            ctx.error(
                &item.span(),
                format!("{place}: a `keys` entry needs `algorithm` (e.g. \"ecdsap256sha256\")"),
            );
        }
        match (role, algorithm, lifetime, keystore) {
            (Some(role), Some(algorithm), Some(lifetime), Some(keystore)) => {
                specs.push(KeySpec {
                    role,
                    algorithm,
                    lifetime,
                    keystore,
                });
                spans.push(lifetime_span);
            }
            _ => ok = false,
        }
    }
    ok.then_some((specs, spans))
}

fn parse_nsec3(ctx: &mut Ctx<'_>, v: &Value<'_>, place: &str) -> Option<Nsec3Policy> {
    let t = match v.get_ref() {
        DeValue::Boolean(true) => return Some(Nsec3Policy::default()),
        DeValue::Boolean(false) => return None,
        DeValue::Table(t) => t,
        other => {
            ctx.error(
                &v.span(),
                format!(
                    "{place}: `nsec3` must be a table like {{ iterations = 0, salt-length = 0, opt-out = false }}, not {}",
                    article(other)
                ),
            );
            return None;
        }
    };
    let mut n = Nsec3Policy::default();
    for (fk, fv) in ordered(t) {
        let key = fk.get_ref().as_ref();
        match key {
            "iterations" => {
                if let Some(i) = ctx.integer(fv, key) {
                    if i < 0 || i > i64::from(MAX_NSEC3_ITERATIONS) {
                        ctx.error(
                            &fv.span(),
                            format!(
                                "{place}: nsec3 iterations {i} is not allowed: must be 0 (RFC 9276 §3.1; \
                                 BIND 9.20 refuses it too): extra iterations cost validators and this \
                                 signer, protect nothing, and validators may treat the zone as insecure"
                            ),
                        );
                    } else {
                        n.iterations = u16::try_from(i).unwrap_or(MAX_NSEC3_ITERATIONS);
                    }
                }
            }
            "salt-length" => {
                if let Some(i) = ctx.integer(fv, key) {
                    if i < 0 || i > i64::from(MAX_NSEC3_SALT_LEN) {
                        ctx.error(
                            &fv.span(),
                            format!("{place}: nsec3 salt-length {i} is not allowed: 0 to {MAX_NSEC3_SALT_LEN} (RFC 5155 §3.2)"),
                        );
                    } else {
                        n.salt_length = u8::try_from(i).unwrap_or(u8::MAX);
                        if i > 0 {
                            ctx.warn(
                                &fv.span(),
                                format!("{place}: nsec3 salt-length {i}: RFC 9276 §3.1 says operators SHOULD NOT use a salt"),
                            );
                        }
                    }
                }
            }
            "opt-out" => {
                if let Some(b) = ctx.boolean(fv, key) {
                    n.opt_out = b;
                }
            }
            _ => ctx.unknown_key(
                fk,
                &format!("{place} `nsec3`"),
                &["iterations", "salt-length", "opt-out"],
            ),
        }
    }
    Some(n)
}

fn parse_digest_types(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Option<Vec<u8>> {
    let items: Vec<&Value<'_>> = match v.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        _ => vec![v],
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let parsed = match item.get_ref() {
            DeValue::String(s) => match s.to_ascii_lowercase().replace('-', "").as_str() {
                "sha256" | "2" => Ok(2),
                "sha384" | "4" => Ok(4),
                "sha1" | "1" => Err(1),
                _ => Err(0),
            },
            DeValue::Integer(_) => match ctx.integer(item, "cds-digest-types") {
                Some(2) => Ok(2),
                Some(4) => Ok(4),
                Some(1) => Err(1),
                _ => Err(0),
            },
            _ => Err(0),
        };
        match parsed {
            Ok(d) => {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
            Err(1) => {
                ctx.error(
                    &item.span(),
                    "`cds-digest-types`: sha1 (1) must not be used for DS (RFC 8624 §3.3); use sha256",
                );
                ok = false;
            }
            Err(_) => {
                ctx.error(
                    &item.span(),
                    "`cds-digest-types` entries are \"sha256\" (2) or \"sha384\" (4)",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

const ZONE_KEYS: &[&str] = &[
    "name",
    "policy",
    "file",
    "primaries",
    "transfer-tsig",
    "allow-notify",
    "notify",
    "allow-transfer",
    "parental-agents",
    "on-upstream-expire",
    "update",
];

fn parse_zones(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    tsig: &BTreeSet<String>,
    policies: &BTreeMap<String, Policy>,
    policy_section: Option<&Value<'_>>,
) -> Vec<ZoneConfig> {
    let mut out: Vec<ZoneConfig> = Vec::new();
    let DeValue::Array(items) = v.get_ref() else {
        ctx.error(
            &v.span(),
            "zones are written [[zone]] (an array of tables), one [[zone]] header per zone",
        );
        return out;
    };
    // Policies written in the file, even ones that failed validation: a zone referring to one
    // of those is not also told the policy is undefined.
    let written_policies: BTreeSet<String> = policy_section
        .and_then(|p| p.get_ref().as_table())
        .map(|t| t.iter().map(|(k, _)| k.get_ref().to_string()).collect())
        .unwrap_or_default();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for item in items.iter() {
        let Some(t) = ctx.table(item, "[[zone]]") else {
            continue;
        };
        let header = item.span();
        let line = ctx.line(&header);
        // The name first: every later message names the zone.
        let name = match t.get("name") {
            None => {
                ctx.error(&header, "[[zone]] needs `name`");
                None
            }
            Some(nv) => ctx
                .string(nv, "name")
                .and_then(|s| match normalise_name(s) {
                    Ok(n) => Some((n, nv.span())),
                    Err(why) => {
                        ctx.error(&nv.span(), format!("zone name: {why}"));
                        None
                    }
                }),
        };
        let label = name
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("at line {line}"));
        let zone_err = |ctx: &mut Ctx<'_>, span: &Span, msg: String| {
            if name.is_some() {
                ctx.zone_error(span, &label, msg);
            } else {
                ctx.error(span, msg);
            }
        };
        let errors_before = ctx.problems.iter().filter(|p| !p.is_warning()).count();

        if let Some((n, span)) = &name {
            if let Some(first) = first_line.get(n) {
                ctx.zone_error(span, n, format!("defined twice (first at line {first})"));
            } else {
                first_line.insert(n.clone(), line);
            }
        }

        let mut policy = DEFAULT_POLICY.to_string();
        let mut file = None;
        let mut primaries = None;
        let mut transfer_tsig = None;
        let mut allow_notify = Vec::new();
        let mut notify = Vec::new();
        let mut allow_transfer = Vec::new();
        let mut parental_agents = Vec::new();
        let mut on_upstream_expire = OnUpstreamExpire::KeepServing;
        let mut update = None;

        for (fk, fv) in ordered(t) {
            let key = fk.get_ref().as_ref();
            let span = fv.span();
            match key {
                "name" => {}
                "policy" => {
                    if let Some(s) = ctx.string(fv, key) {
                        if !policies.contains_key(s) && !written_policies.contains(s) {
                            zone_err(
                                ctx,
                                &span,
                                format!(
                                    "policy {s:?} is not defined; defined: {}",
                                    policies.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            );
                        }
                        policy = s.to_string();
                    }
                }
                "file" => {
                    if let Some(s) = ctx.nonempty_string(fv, key) {
                        file = Some(PathBuf::from(s));
                    }
                }
                "primaries" => {
                    if let Some(list) = ctx.addr_list(fv, key, Some(DEFAULT_DNS_PORT)) {
                        if list.is_empty() {
                            zone_err(ctx, &span, "`primaries` is empty".into());
                        } else if let Some(a) = list.iter().find(|a| a.port() == 0) {
                            zone_err(ctx, &span, format!("primary {a} has port 0"));
                        } else {
                            primaries = Some(list);
                        }
                    }
                }
                "transfer-tsig" => {
                    if let Some(s) = ctx.string(fv, key) {
                        match resolve_key(s, tsig) {
                            Ok(k) => transfer_tsig = Some(k),
                            Err(why) => zone_err(ctx, &span, format!("`transfer-tsig`: {why}")),
                        }
                    }
                }
                "allow-notify" | "allow-transfer" => {
                    if let Some(entries) = parse_acl(ctx, fv, key, tsig, &zone_err) {
                        if key == "allow-notify" {
                            allow_notify = entries;
                        } else {
                            allow_transfer = entries;
                        }
                    }
                }
                "notify" | "parental-agents" => {
                    if let Some(list) = ctx.addr_list(fv, key, Some(DEFAULT_DNS_PORT)) {
                        if let Some(a) = list.iter().find(|a| a.port() == 0) {
                            zone_err(ctx, &span, format!("`{key}`: {a} has port 0"));
                        } else if key == "notify" {
                            notify = list;
                        } else {
                            parental_agents = list;
                        }
                    }
                }
                "on-upstream-expire" => {
                    if let Some(s) = ctx.string(fv, key) {
                        match s {
                            "keep-serving" => on_upstream_expire = OnUpstreamExpire::KeepServing,
                            "withdraw" => on_upstream_expire = OnUpstreamExpire::Withdraw,
                            other => zone_err(
                                ctx,
                                &span,
                                format!(
                                    "`on-upstream-expire` {other:?} is not keep-serving or withdraw"
                                ),
                            ),
                        }
                    }
                }
                "update" => update = parse_update(ctx, fv, tsig, &zone_err),
                _ => ctx.unknown_key(fk, "[[zone]]", ZONE_KEYS),
            }
        }

        let source = match (file, primaries) {
            (Some(f), None) => Some(ZoneSource::File(f)),
            (None, Some(p)) => Some(ZoneSource::Primaries(p)),
            (Some(_), Some(_)) => {
                let span = t
                    .get("primaries")
                    .map(|v| v.span())
                    .unwrap_or_else(|| header.clone());
                zone_err(
                    ctx,
                    &span,
                    "has both `file` and `primaries`; a zone has exactly one source".into(),
                );
                None
            }
            (None, None) => {
                // Only report a missing source when none was written (a bad one is reported
                // where it is).
                if t.get("file").is_none() && t.get("primaries").is_none() {
                    zone_err(
                        ctx,
                        &header,
                        "needs a source: `file = \"PATH\"` or `primaries = [\"IP:PORT\"]`".into(),
                    );
                }
                None
            }
        };
        if let (Some(ZoneSource::File(_)), Some(tv)) = (&source, t.get("transfer-tsig")) {
            if name.is_some() {
                ctx.zone_warn(
                    &tv.span(),
                    &label,
                    "`transfer-tsig` has no effect on a zone read from a file",
                );
            }
        }

        let errors_after = ctx.problems.iter().filter(|p| !p.is_warning()).count();
        if let (Some((name, _)), Some(source), true) = (name, source, errors_after == errors_before)
        {
            out.push(ZoneConfig {
                name,
                policy,
                source,
                transfer_tsig,
                allow_notify,
                notify,
                allow_transfer,
                parental_agents,
                on_upstream_expire,
                update,
                line,
            });
        }
    }
    out
}

/// A TSIG key reference: normalised and defined.
///
/// `tsig` holds every key name written in the file, including keys whose definition has errors
/// (those are reported where they are defined, not again at every use).
fn resolve_key(s: &str, tsig: &BTreeSet<String>) -> Result<String, String> {
    let name = normalise_name(s).map_err(|why| format!("bad key name: {why}"))?;
    if tsig.contains(&name) {
        Ok(name)
    } else {
        let defined: Vec<&str> = tsig.iter().map(String::as_str).collect();
        Err(format!(
            "TSIG key {s:?} is not defined (add a [tsig.{}] section){}",
            name.trim_end_matches('.'),
            if defined.is_empty() {
                String::new()
            } else {
                format!("; defined: {}", defined.join(", "))
            }
        ))
    }
}

fn parse_acl(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    key: &str,
    tsig: &BTreeSet<String>,
    zone_err: &dyn Fn(&mut Ctx<'_>, &Span, String),
) -> Option<Vec<AclEntry>> {
    let items = ctx.string_list(v, key)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (s, span) in items {
        match parse_acl_entry(s) {
            Ok(AclEntry::Key(k)) => {
                let raw = s.trim().trim_start_matches("key:");
                match resolve_key(raw, tsig) {
                    Ok(_) => out.push(AclEntry::Key(k)),
                    Err(why) => {
                        zone_err(ctx, &span, format!("`{key}`: {why}"));
                        ok = false;
                    }
                }
            }
            Ok(entry) => out.push(entry),
            Err(why) => {
                zone_err(ctx, &span, format!("`{key}`: {why}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn parse_update(
    ctx: &mut Ctx<'_>,
    v: &Value<'_>,
    tsig: &BTreeSet<String>,
    zone_err: &dyn Fn(&mut Ctx<'_>, &Span, String),
) -> Option<UpdatePolicy> {
    let t = ctx.table(v, "`update`")?;
    let mut keys = None;
    let mut peers = Vec::new();
    let mut types: Option<Vec<u16>> = Some(super::DEFAULT_UPDATE_TYPES.to_vec());
    for (fk, fv) in ordered(t) {
        let key = fk.get_ref().as_ref();
        match key {
            "keys" => {
                let Some(list) = ctx.string_list(fv, "update.keys") else {
                    continue;
                };
                if list.is_empty() {
                    zone_err(
                        ctx,
                        &fv.span(),
                        "`update.keys` is empty: nobody could UPDATE; remove `update` instead"
                            .into(),
                    );
                    continue;
                }
                let mut resolved = Vec::new();
                let mut ok = true;
                for (s, span) in list {
                    match resolve_key(s, tsig) {
                        Ok(k) => resolved.push(k),
                        Err(why) => {
                            zone_err(ctx, &span, format!("`update.keys`: {why}"));
                            ok = false;
                        }
                    }
                }
                if ok {
                    keys = Some(resolved);
                }
            }
            "types" => {
                types = None;
                let Some(list) = ctx.string_list(fv, "update.types") else {
                    continue;
                };
                let mut out = Vec::new();
                let mut ok = true;
                for (s, span) in list {
                    match UPDATE_TYPES
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(s.trim()))
                    {
                        Some((_, n)) => {
                            if !out.contains(n) {
                                out.push(*n);
                            }
                        }
                        None => {
                            zone_err(
                                ctx,
                                &span,
                                format!(
                                    "`update.types`: {s:?} cannot be updated; UPDATE is limited to the apex {}",
                                    UPDATE_TYPES
                                        .iter()
                                        .map(|(n, _)| *n)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                if out.is_empty() && ok {
                    zone_err(
                        ctx,
                        &fv.span(),
                        "`update.types` is empty: nothing could be updated; remove `update` instead"
                            .into(),
                    );
                    ok = false;
                }
                if ok {
                    types = Some(out);
                }
            }
            "peers" => {
                if let Some(list) = ctx.addr_list(fv, "update.peers", Some(DEFAULT_DNS_PORT)) {
                    peers = list;
                }
            }
            _ => ctx.unknown_key(fk, "`update`", &["keys", "types", "peers"]),
        }
    }
    if t.get("keys").is_none() {
        zone_err(
            ctx,
            &v.span(),
            "`update` needs `keys`: the TSIG keys allowed to send UPDATEs".into(),
        );
    }
    match (keys, types) {
        (Some(keys), Some(types)) => Some(UpdatePolicy { keys, types, peers }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addrs() {
        let p = |s| parse_socket_addr(s, Some(53));
        assert_eq!(p("192.0.2.1"), Ok("192.0.2.1:53".parse().unwrap()));
        assert_eq!(p("192.0.2.1:5353"), Ok("192.0.2.1:5353".parse().unwrap()));
        assert_eq!(p("::1"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(p("[::1]"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(p("[::1]:54"), Ok("[::1]:54".parse().unwrap()));
        assert!(p("ns1.example.com").is_err());
        assert!(parse_socket_addr("127.0.0.1", None).is_err());
    }

    #[test]
    fn acl_entries() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_acl_entry("192.0.2.10"),
            Ok(AclEntry::Addr(ip("192.0.2.10"), 32))
        );
        assert_eq!(
            parse_acl_entry("127.0.0.0/8"),
            Ok(AclEntry::Addr(ip("127.0.0.0"), 8))
        );
        assert_eq!(
            parse_acl_entry("2001:db8::/32"),
            Ok(AclEntry::Addr(ip("2001:db8::"), 32))
        );
        assert_eq!(
            parse_acl_entry("0.0.0.0/0"),
            Ok(AclEntry::Addr(ip("0.0.0.0"), 0))
        );
        assert_eq!(parse_acl_entry("key:XFR"), Ok(AclEntry::Key("xfr.".into())));
        assert!(parse_acl_entry("127.0.0.1/8").is_err());
        assert!(parse_acl_entry("127.0.0.0/33").is_err());
        assert!(parse_acl_entry("localhost").is_err());
        let net = parse_acl_entry("127.0.0.0/8").unwrap();
        assert!(net.matches_addr(ip("127.1.2.3")));
        assert!(net.matches_addr(ip("::ffff:127.0.0.1")));
        assert!(!net.matches_addr(ip("128.0.0.1")));
        assert!(!net.matches_addr(ip("::1")));
        let any = parse_acl_entry("0.0.0.0/0").unwrap();
        assert!(any.matches_addr(ip("203.0.113.9")));
        let v6 = parse_acl_entry("2001:db8::/32").unwrap();
        assert!(v6.matches_addr(ip("2001:db8:1::1")));
        assert!(!v6.matches_addr(ip("2001:db9::1")));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("state_dir", &["listen", "state-dir"]),
            "; did you mean `state-dir`?"
        );
        assert_eq!(
            suggest("lisen", &["listen", "state-dir"]),
            "; did you mean `listen`?"
        );
        assert_eq!(suggest("zzz", &["listen", "state-dir"]), "");
    }
}
