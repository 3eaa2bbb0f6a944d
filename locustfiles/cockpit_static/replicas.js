// The Cockpit tab's replica chart (added by locustfiles/cockpit.py with --replica-samples): the Ray Serve
// deployment's target, starting and running replicas over time, as the replica recorder sampled them, and
// the controller's total requests (queued + ongoing over its look-back window: what the autoscaler decides on),
// from /cockpit/replicas.json (at most 600 points). Plain SVG drawn here: nothing is fetched from outside.
(function () {
  var url = document.currentScript.src.replace(/\/cockpit\/static\/replicas\.js.*$/, "/cockpit/replicas.json");
  var NS = "http://www.w3.org/2000/svg";
  var W = 720, H = 200, L = 36, R = 10, T = 10, B = 28;
  var SERIES = [[1, "target", "#9e9e9e", "6 4"], [2, "starting", "#ef6c00", ""], [3, "running", "#1565c0", ""],
                [4, "requests (autoscaler's input)", "#2e7d32", "2 3"]];
  var data = null, drawn = null;

  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function onTab() {
    return new URLSearchParams(window.location.search).get("tab") === "cockpit";
  }

  function box() {
    var b = document.getElementById("loadlab-replicas");
    if (b && document.body.contains(b)) return b;
    var table = document.querySelector(".MuiTableContainer-root") || document.querySelector("table");
    if (!table || !table.parentNode) return null;
    b = document.createElement("div");
    b.id = "loadlab-replicas";
    b.style.margin = "16px 0";
    table.parentNode.insertBefore(b, table.nextSibling);   // below the stage table
    return b;
  }

  function draw() {
    if (!onTab() || !data) return;
    var fresh = !document.getElementById("loadlab-replicas"), b = box();
    if (!b || (!fresh && drawn === data)) return;   // drawn already: nothing new
    var pts = data.samples || [], latest = data.latest;
    var head = "Replicas, " + data.label + ": ";
    head += latest ? "target " + (latest.target === null ? "-" : latest.target) + ", starting " + latest.starting +
      ", running " + latest.running + ", stopping " + latest.stopping +
      (latest.total_requests === null || latest.total_requests === undefined ? ""
        : ", requests " + latest.total_requests.toFixed(2)) : data.status;
    head += " · " + data.n + " samples" + (data.malformed ? ", " + data.malformed + " malformed lines skipped" : "");
    var svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": head});
    svg.style.fontSize = "11px";
    if (pts.length) {
      var t0 = pts[0][0], span = Math.max(pts[pts.length - 1][0] - t0, 1), top = 1;
      pts.forEach(function (p) { for (var i = 1; i < 5; i++) top = Math.max(top, p[i] || 0); });
      var x = function (t) { return L + (W - L - R) * (t - t0) / span; };
      var y = function (v) { return H - B - (H - B - T) * v / top; };
      for (var v = 0; v <= top; v += Math.max(1, Math.ceil(top / 4))) {
        svg.appendChild(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#8884"}));
        svg.appendChild(el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end", fill: "currentColor"}, String(v)));
      }
      svg.appendChild(el("text", {x: L, y: H - 8, fill: "currentColor"}, "0 s"));
      svg.appendChild(el("text", {x: W - R, y: H - 8, "text-anchor": "end", fill: "currentColor"},
                         Math.round(span) + " s"));
      SERIES.forEach(function (s, k) {
        var d = "", prev = null;
        pts.forEach(function (p) {   // a step line: a count holds until the next sample
          if (p[s[0]] === null) { prev = null; return; }
          var px = x(p[0]).toFixed(1), py = y(p[s[0]]).toFixed(1);
          d += prev === null ? "M" + px + " " + py : "H" + px + "V" + py;
          prev = p[s[0]];
        });
        if (d) svg.appendChild(el("path", {d: d, fill: "none", stroke: s[2], "stroke-width": 2,
                                              "stroke-dasharray": s[3]}));
        svg.appendChild(el("text", {x: L + 8 + 80 * k, y: T + 10, fill: s[2]}, s[1]));
      });
    }
    var caption = document.createElement("div");
    caption.textContent = head;
    b.replaceChildren(caption, svg);
    drawn = data;
  }

  function poll() {
    if (!onTab() || document.hidden) return;
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) { data = d; draw(); } }).catch(function () {});
  }

  setInterval(poll, 2000);   // the cockpit's own update interval; only while its tab is shown
  setInterval(draw, 500);    // re-attached when the tab is rendered again
  poll();
})();
