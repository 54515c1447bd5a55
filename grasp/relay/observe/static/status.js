(function (root) {
  "use strict";
  var KIND_LABELS = {"30617": "30617 announcements", "30618": "30618 states", "1618": "1618 PRs",
                     "1619": "1619 PR updates", "placeholder": "PR placeholders"};
  var KIND_ORDER = ["30617", "30618", "1618", "1619", "placeholder"];
  var SOURCE_KEYS = ["url", "state", "caught_up", "connected_since", "last_event_at",
                     "events_received", "events_accepted", "events_duplicate", "events_rejected",
                     "events_invalid", "reconnects", "next_attempt_at", "last_error"];
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
    var part = s.sync_sources, keys = [];
    if (part.error) return error(part);
    part.connections.forEach(function (c) {
      Object.keys(c).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    keys = ordered(keys, SOURCE_KEYS);
    var rows = part.connections.map(function (c) {
      return keys.map(function (k) {
        var v = own(c, k) ? c[k] : null;
        var timed = /_at$|_since$/.test(k);
        return esc(timed ? ago(v, s.generated_at) : valueText(v));
      });
    });
    var headers = keys.map(function (k) { return k.replace(/_/g, " "); });
    return table(headers, rows, "no sync sources configured");
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

  function render(s) {
    return {sync: sync(s), domains: domains(s), releases: releases(s), sources: sources(s),
            purgatory: purgatory(s)};
  }
  root.GraspStatus = {render: render, clockText: clockText};
  if (!root.document) return;

  var doc = root.document, body = doc.body;
  var url = body.getAttribute("data-json-url");
  var every = Number(body.getAttribute("data-refresh-ms")) || 2000;
  var live = doc.getElementById("live");
  function show(text, state) { live.textContent = text; live.className = "live " + state; }
  function apply(s) {
    var parts = render(s);
    Object.keys(parts).forEach(function (name) {
      var el = doc.getElementById(name + "-body");
      if (el) el.innerHTML = parts[name];
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
