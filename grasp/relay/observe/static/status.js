(function (root) {
  "use strict";
  var KIND_LABELS = {"30617": "30617 announcements", "30618": "30618 states", "1618": "1618 PRs",
                     "1619": "1619 PR updates", "placeholder": "PR placeholders"};
  var KIND_ORDER = ["30617", "30618", "1618", "1619", "placeholder"];
  var SOURCE_KEYS = ["url", "state", "caught_up", "connected_since", "last_event_at",
                     "events_received", "events_accepted", "events_duplicate", "events_rejected",
                     "events_invalid", "reconnects", "next_attempt_at", "last_error"];
  var PEER_KEYS = ["url", "state", "last_error", "events_received", "events_accepted",
                   "last_reconciled_at", "nip77", "failures", "next_attempt_at", "origin"];
  var DASH = "\u2014";
  var ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#x27;"};

  function esc(v) { return String(v).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; }); }
  function fixed(x, digits) { return (x === 0 ? 0 : x).toFixed(digits); }
  function duration(d) {
    if (d < 120) return fixed(d, 1) + " s";
    if (d < 7200) return Math.floor(d / 60) + " min";
    var m = Math.floor(d % 3600 / 60);
    return Math.floor(d / 3600) + " h " + (m < 10 ? "0" : "") + m + " min";
  }
  function secs(x) { return x === null || x === undefined ? DASH : duration(x); }
  function took(x) {
    if (x === null || x === undefined) return DASH;
    return x < 10 ? fixed(x, 2) + " s" : duration(x);
  }
  function bytesText(n) {
    if (n === null || n === undefined) return DASH;
    var units = [["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (n >= units[i][1]) return fixed(n / units[i][1], 1) + " " + units[i][0];
    }
    return n + " B";
  }
  function linkPath(prefix, name) {
    try { return prefix + encodeURIComponent(name); } catch (e) { return null; }
  }
  function valueText(v) {
    if (v === null || v === undefined) return DASH;
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : fixed(v, 2);
    return String(v);
  }
  function ago(t, now) {
    if (typeof t !== "number") return valueText(t);
    return t > now ? "in " + duration(t - now) : duration(now - t) + " ago";
  }
  function clockText(t) { return new Date(t * 1000).toISOString().slice(11, 19) + " UTC"; }
  function kindLabel(k) { return own(KIND_LABELS, k) ? KIND_LABELS[k] : k; }
  function own(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

  function table(headers, rows, empty) {
    if (!rows.length) return '<p class="empty">' + esc(empty) + "</p>";
    var head = headers.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("");
    var body = rows.map(function (row) {
      return "<tr>" + row.map(function (c) { return "<td>" + c + "</td>"; }).join("") + "</tr>";
    }).join("");
    return "<table><thead><tr>" + head + "</tr></thead><tbody>" + body + "</tbody></table>";
  }
  function error(part) {
    return part.error ? '<p class="error">unavailable: ' + esc(part.error) + "</p>" : "";
  }
  function meter(used, limit) {
    return esc(used) + " / " + esc(limit) + ' <meter min="0" max="' + esc(limit || 1) +
      '" value="' + esc(used) + '"></meter>';
  }
  function ordered(keys, first) {
    var rest = keys.filter(function (k) { return first.indexOf(k) < 0; }).sort();
    return first.filter(function (k) { return keys.indexOf(k) >= 0; }).concat(rest);
  }

  function sync(s) {
    var q = s.sync;
    if (q.error) return error(q);
    var rows = q.next_attempts.map(function (a) { return [esc(a.identifier), esc(secs(a.in_secs))]; });
    return '<p class="figures"><span class="figure"><b>' + esc(q.queue_size) + "</b> queued" +
      '</span><span class="figure"><b>' + esc(q.in_progress) + "</b> syncing</span></p>" +
      "<h3>Next attempts</h3>" + table(["identifier", "in"], rows, "none scheduled");
  }
  function domains(s) {
    var q = s.sync;
    if (q.error) return error(q);
    var rows = q.domains.map(function (d) {
      return [esc(d.domain), meter(d.in_flight, d.max_concurrent), esc(d.queued),
              meter(d.window_used, d.max_per_window)];
    });
    return table(["domain", "in flight", "queued", "rate window"], rows, "no remote domain yet");
  }
  function releases(s) {
    var rows = s.releases.map(function (r) {
      var event = '<code title="' + esc(r.event_id) + '">' + esc(r.event_id.slice(0, 12)) + "</code>";
      return [esc(ago(r.released_at, s.generated_at)), esc(kindLabel(String(r.kind))),
              esc(r.identifier), event, esc(secs(r.latency_secs))];
    });
    return table(["released", "kind", "identifier", "event", "held for"], rows,
                 "nothing released yet");
  }
  function sources(s) {
    return records(s, s.sync_sources, "connections", SOURCE_KEYS, "no sync sources configured");
  }
  function peers(s) {
    return records(s, s.peers || {peers: []}, "peers", PEER_KEYS, "no peers");
  }
  function records(s, part, key, order, empty) {
    var keys = [];
    if (part.error) return error(part);
    part[key].forEach(function (c) {
      Object.keys(c).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    keys = ordered(keys, order);
    var rows = part[key].map(function (c) {
      return keys.map(function (k) {
        var v = own(c, k) ? c[k] : null;
        var timed = /_at$|_since$/.test(k);
        return esc(timed ? ago(v, s.generated_at) : valueText(v));
      });
    });
    var headers = keys.map(function (k) { return k.replace(/_/g, " "); });
    return table(headers, rows, empty);
  }
  function purgatory(s) {
    var part = s.purgatory, counts = part.counts;
    if (part.error) return error(part);
    var rows = ordered(Object.keys(counts), KIND_ORDER).map(function (k) {
      return [esc(kindLabel(k)), esc(counts[k])];
    });
    if (rows.length) rows.push(["<b>total</b>", "<b>" + esc(part.total) + "</b>"]);
    return table(["kind", "held"], rows, "purgatory is empty");
  }

  var HISTORY_PATH = "/status/", TIMES = "\u00d7";
  var ATTEMPT_HEADERS = ["started", "url", "path", "outcome", "why", "objects", "released",
                         "stored", "took"];
  function why(r) {
    var reason = r.reason, detail = r.detail || "";
    if (reason === "policy") {
      var text = "refused by the fetch policy: " + detail;
      return r.permanent ? text + "; not tried again" : text;
    }
    if (reason === "missing_objects") {
      var n = r.missing || 0;
      return "lacks " + n + " needed object" + (n === 1 ? "" : "s");
    }
    if (reason) return detail ? reason + ": " + detail : String(reason);
    return String(r.outcome);
  }
  function identifierLink(identifier) {
    var href = linkPath(HISTORY_PATH, identifier);
    if (href === null) return esc(identifier);
    return '<a href="' + esc(href) + '">' + esc(identifier) + "</a>";
  }
  function urlLine(u, now) {
    var state = u.reason ? "bad" : "ok";
    var counts = u.attempts + TIMES + ", " + ago(u.last_at, now);
    return '<div class="url ' + state + '"><code>' + esc(u.url) + "</code> " + esc(why(u)) +
      ' <span class="muted">(' + esc(counts) + ")</span></div>";
  }
  function attemptsTable(attempts, now) {
    var rows = attempts.map(function (a) {
      return [esc(ago(a.started_at, now)), "<code>" + esc(a.url) + "</code>", esc(a.path),
              esc(a.outcome), esc(why(a)), esc(a.fetched + " arrived, " + a.missing + " missing"),
              esc(valueText(a.released)), esc(bytesText(a.bytes)), esc(took(a.seconds))];
    });
    return table(ATTEMPT_HEADERS, rows, "no attempt recorded yet");
  }
  function historyRow(h, now) {
    var urls = h.urls.map(function (u) { return urlLine(u, now); }).join("") || esc(DASH);
    var cells = [identifierLink(h.identifier), esc(h.state), esc(h.attempt_count),
                 esc(ago(h.next_attempt_at, now)), urls];
    var summary = h.attempts.length + " of " + h.requests + " attempts";
    return '<tr class="' + esc(h.state) + '">' +
      cells.map(function (c) { return "<td>" + c + "</td>"; }).join("") +
      '</tr><tr class="attempts"><td colspan="5">' +
      '<details data-identifier="' + esc(h.identifier) + '"><summary>' + esc(summary) +
      "</summary>" + attemptsTable(h.attempts, now) + "</details></td></tr>";
  }
  function history(s) {
    var part = s.history;
    if (part.error) return error(part);
    var held = part.identifiers;
    if (!held.length) return '<p class="empty">no identifier queued or attempted</p>';
    var now = s.generated_at;
    var head = ["identifier", "state", "retries", "next attempt", "clone URLs"].map(function (h) {
      return "<th>" + h + "</th>";
    }).join("");
    var body = held.map(function (h) { return historyRow(h, now); }).join("");
    var more = "";
    if (part.total > held.length) {
      more = '<p class="empty">' + esc(held.length) + " of " + esc(part.total) +
        " identifiers shown; " + esc(HISTORY_PATH) + "&lt;identifier&gt; shows any other</p>";
    }
    return '<table class="history"><thead><tr>' + head + "</tr></thead><tbody>" + body +
      "</tbody></table>" + more;
  }

  function render(s) {
    return {sync: sync(s), domains: domains(s), history: history(s), releases: releases(s),
            sources: sources(s), purgatory: purgatory(s), peers: peers(s)};
  }
  root.GraspStatus = {render: render, clockText: clockText};
  if (!root.document) return;

  var doc = root.document, body = doc.body;
  var url = body.getAttribute("data-json-url");
  var every = Number(body.getAttribute("data-refresh-ms")) || 2000;
  var live = doc.getElementById("live");
  function show(text, state) { live.textContent = text; live.className = "live " + state; }
  function openDetails() {
    var open = {};
    Array.prototype.forEach.call(doc.querySelectorAll("details[open]"), function (d) {
      open[d.getAttribute("data-identifier")] = true;
    });
    return open;
  }
  function apply(s) {
    var parts = render(s), open = openDetails();  // a re-render keeps what the reader opened
    Object.keys(parts).forEach(function (name) {
      var el = doc.getElementById(name + "-body");
      if (el) el.innerHTML = parts[name];
    });
    Array.prototype.forEach.call(doc.querySelectorAll("details"), function (d) {
      if (open[d.getAttribute("data-identifier")]) d.setAttribute("open", "");
    });
    doc.getElementById("updated").textContent = clockText(s.generated_at);
  }
  function poll() {
    fetch(url, {cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { apply(s); show("live", "ok"); })
      .catch(function (e) { show("stale: " + e.message, "stale"); })
      .then(function () { root.setTimeout(poll, every); });
  }
  poll();
})(typeof window !== "undefined" ? window : globalThis);
