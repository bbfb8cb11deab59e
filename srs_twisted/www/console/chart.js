// A tiny line chart on a canvas: the last `span` seconds of one series, newest on the right.
(function () {
  "use strict";

  function Chart(canvas, span) {
    this.canvas = canvas;
    this.span = span || 300;
    this.points = []; // [seconds, value]
  }

  Chart.prototype.add = function (t, value) {
    this.points.push([t, value]);
    while (this.points.length && this.points[0][0] < t - this.span) this.points.shift();
    this.draw();
  };

  Chart.prototype.draw = function () {
    var c = this.canvas;
    var g = c.getContext("2d");
    var w = c.width, h = c.height, pad = 2;
    g.clearRect(0, 0, w, h);
    if (!this.points.length) return;
    var now = this.points[this.points.length - 1][0];
    // The window grows from one minute to `span` as the history does.
    var shown = Math.min(this.span, Math.max(60, now - this.points[0][0]));
    var max = 1;
    this.points.forEach(function (p) { if (p[1] > max) max = p[1]; });
    var x = function (t) { return w - pad - (now - t) / shown * (w - 2 * pad); }.bind(this);
    var y = function (v) { return h - pad - v / max * (h - 14 - pad); };
    g.strokeStyle = "#1f6feb";
    g.fillStyle = "rgba(31, 111, 235, 0.12)";
    g.lineWidth = 1.5;
    g.beginPath();
    this.points.forEach(function (p, i) { (i ? g.lineTo : g.moveTo).call(g, x(p[0]), y(p[1])); });
    g.stroke();
    g.lineTo(x(now), h - pad);
    g.lineTo(x(this.points[0][0]), h - pad);
    g.closePath();
    g.fill();
    g.fillStyle = "#667085";
    g.font = "10px sans-serif";
    g.fillText("max " + Math.round(max) + " kbps, " + Math.round(shown / 60) + " min", 4, 10);
  };

  window.SrsChart = Chart;
})();
