// A small WebGL 2 point renderer for the Map view: every token a point (gl.POINTS, a colour
// each), a pan/zoom camera as one uniform, highlighted points drawn again on top, and line
// segments for a selected token's neighbours. Labels are drawn by the view on a 2-D canvas.
//
// Hand-written, not a library, for two reasons found when trying them: regl (under
// regl-scatterplot) compiles its draw commands with Function(...), which the page's
// Content-Security-Policy (script-src 'self', no 'unsafe-eval') refuses; and
// embedding-atlas's npm package cannot be installed (its dependency @uwdata/wk-geojson is
// missing from the registry). What the map needs of WebGL is small: two shaders, below.
"use strict";

const POINT_VERTEX = `#version 300 es
in float a_x;
in float a_y;
in vec4 a_colour;
uniform vec2 u_centre;   // the data point at the middle of the canvas
uniform vec2 u_scale;    // clip units per data unit, x and y
uniform float u_size;    // point diameter, device pixels
uniform vec4 u_override; // used instead of a_colour when its alpha is above 0
uniform float u_dim;     // 0: the point's colour; 1: all but white
out vec4 v_colour;
void main() {
  gl_Position = vec4((vec2(a_x, a_y) - u_centre) * u_scale, 0.0, 1.0);
  gl_PointSize = u_size;
  vec4 colour = u_override.a > 0.0 ? u_override : a_colour;
  v_colour = vec4(mix(colour.rgb, vec3(1.0), u_dim), colour.a);
}`;

const POINT_FRAGMENT = `#version 300 es
precision mediump float;
in vec4 v_colour;
uniform float u_round; // 1: discs (gl.POINTS are squares); 0: squares and lines
out vec4 colour;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  if (u_round > 0.5 && dot(d, d) > 0.25) discard;
  colour = v_colour;
}`;

class PointMap {
  /** A renderer drawing into `canvas` (its CSS size is the map's size). Throws an Error with
   * a one-line message when the browser has no WebGL 2. */
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL 2, which the map needs");
    this.canvas = canvas;
    this.gl = gl;
    this.program = link(gl, POINT_VERTEX, POINT_FRAGMENT);
    this.where = {};
    for (const name of ["u_centre", "u_scale", "u_size", "u_override", "u_dim", "u_round"]) {
      this.where[name] = gl.getUniformLocation(this.program, name);
    }
    this.attrib = {
      x: gl.getAttribLocation(this.program, "a_x"),
      y: gl.getAttribLocation(this.program, "a_y"),
      colour: gl.getAttribLocation(this.program, "a_colour"),
    };
    this.buffers = { x: gl.createBuffer(), y: gl.createBuffer(), colour: gl.createBuffer(),
      highlight: gl.createBuffer(), lineX: gl.createBuffer(), lineY: gl.createBuffer() };
    this.points = gl.createVertexArray();
    this.lines = gl.createVertexArray();
    this.count = 0;
    this.x = new Float32Array(0);
    this.y = new Float32Array(0);
    this.highlighted = 0;
    this.lineVertices = 0;
    this.dimmed = false;
    this.camera = { cx: 0, cy: 0, scale: 1 }; // scale: CSS pixels per data unit
  }

  /** The points' positions (data units; y up). */
  setPoints(x, y) {
    const gl = this.gl;
    this.x = x;
    this.y = y;
    this.count = x.length;
    gl.bindVertexArray(this.points);
    this.upload(this.buffers.x, x, this.attrib.x, 1, gl.FLOAT, false);
    this.upload(this.buffers.y, y, this.attrib.y, 1, gl.FLOAT, false);
    gl.bindVertexArray(null);
  }

  /** Each point's colour: 4 bytes (r, g, b, a) a point. */
  setColours(rgba) {
    const gl = this.gl;
    gl.bindVertexArray(this.points);
    this.upload(this.buffers.colour, rgba, this.attrib.colour, 4, gl.UNSIGNED_BYTE, true);
    gl.bindVertexArray(null);
  }

  /** Points drawn again, larger, on top (indices into the points); `dim` pales the rest. */
  setHighlight(indices, dim) {
    const gl = this.gl;
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.highlight);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, new Uint32Array(indices), gl.DYNAMIC_DRAW);
    this.highlighted = indices.length;
    this.dimmed = dim;
  }

  /** Line segments from point `from` to each of `to` (indices into the points). */
  setLines(from, to) {
    const gl = this.gl;
    const xs = new Float32Array(2 * to.length);
    const ys = new Float32Array(2 * to.length);
    to.forEach((j, n) => {
      xs[2 * n] = this.x[from];
      ys[2 * n] = this.y[from];
      xs[2 * n + 1] = this.x[j];
      ys[2 * n + 1] = this.y[j];
    });
    gl.bindVertexArray(this.lines);
    this.upload(this.buffers.lineX, xs, this.attrib.x, 1, gl.FLOAT, false);
    this.upload(this.buffers.lineY, ys, this.attrib.y, 1, gl.FLOAT, false);
    gl.bindVertexArray(null);
    this.lineVertices = xs.length;
  }

  upload(buffer, data, location, size, type, normalized) {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    if (location < 0) return;
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, size, type, normalized, 0, 0);
  }

  /** Match the drawing buffer to the canvas's CSS size; true when it changed. */
  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width === width && this.canvas.height === height) return false;
    this.canvas.width = width;
    this.canvas.height = height;
    return true;
  }

  /** Draw everything under the current camera. */
  draw() {
    const gl = this.gl;
    const ratio = window.devicePixelRatio || 1;
    const { cx, cy, scale } = this.camera;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(this.program);
    const w = this.where;
    gl.uniform2f(w.u_centre, cx, cy);
    gl.uniform2f(w.u_scale, (2 * scale * ratio) / this.canvas.width,
      (2 * scale * ratio) / this.canvas.height);
    // Points grow a little as one zooms in, so a dense map stays legible and a sparse one full.
    const base = Math.min(9, Math.max(2, 1.5 + Math.log2(1 + scale / this.fitScale()))) * ratio;
    gl.uniform4f(w.u_override, 0, 0, 0, 0);
    gl.uniform1f(w.u_round, 1);
    gl.bindVertexArray(this.points);
    gl.uniform1f(w.u_dim, this.dimmed ? 0.8 : 0);
    gl.uniform1f(w.u_size, base);
    gl.drawArrays(gl.POINTS, 0, this.count);
    if (this.lineVertices) {
      gl.bindVertexArray(this.lines);
      gl.uniform1f(w.u_round, 0);
      gl.uniform1f(w.u_dim, 0);
      gl.uniform4f(w.u_override, 0.1, 0.1, 0.1, 1);
      gl.drawArrays(gl.LINES, 0, this.lineVertices);
      gl.uniform4f(w.u_override, 0, 0, 0, 0);
      gl.uniform1f(w.u_round, 1);
      gl.bindVertexArray(this.points);
    }
    if (this.highlighted) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.highlight);
      gl.uniform1f(w.u_dim, 0);
      gl.uniform1f(w.u_size, base + 3 * ratio); // a dark ring: a larger dark disc under it
      gl.uniform4f(w.u_override, 0.1, 0.1, 0.1, 1);
      gl.drawElements(gl.POINTS, this.highlighted, gl.UNSIGNED_INT, 0);
      gl.uniform4f(w.u_override, 0, 0, 0, 0);
      gl.uniform1f(w.u_size, base + 1 * ratio);
      gl.drawElements(gl.POINTS, this.highlighted, gl.UNSIGNED_INT, 0);
    }
    gl.bindVertexArray(null);
  }

  /** Wait until the GPU has drawn (reading a pixel back), for timings. */
  finish() {
    const pixel = new Uint8Array(4);
    this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, pixel);
  }

  // --- the camera --------------------------------------------------------------------------

  /** The scale (CSS pixels per data unit) at which `bounds` fills the canvas. */
  fitScale(bounds = this.bounds) {
    if (!bounds) return 1;
    const w = this.canvas.clientWidth || 1;
    const h = this.canvas.clientHeight || 1;
    const dx = bounds.x[1] - bounds.x[0] || 1;
    const dy = bounds.y[1] - bounds.y[0] || 1;
    return 0.92 * Math.min(w / dx, h / dy);
  }

  /** Canvas CSS pixel (left, top) of a data point. */
  toScreen(x, y) {
    const { cx, cy, scale } = this.camera;
    return [this.canvas.clientWidth / 2 + (x - cx) * scale,
      this.canvas.clientHeight / 2 - (y - cy) * scale];
  }

  /** The data point at canvas CSS pixel (left, top). */
  toData(left, top) {
    const { cx, cy, scale } = this.camera;
    return [cx + (left - this.canvas.clientWidth / 2) / scale,
      cy - (top - this.canvas.clientHeight / 2) / scale];
  }

  /** Zoom by `factor` keeping the data point under (left, top) in place. */
  zoomAt(left, top, factor) {
    const [x, y] = this.toData(left, top);
    const scale = Math.min(Math.max(this.camera.scale * factor, this.fitScale() / 4),
      this.fitScale() * 5000);
    this.camera = { cx: x - (left - this.canvas.clientWidth / 2) / scale,
      cy: y + (top - this.canvas.clientHeight / 2) / scale, scale };
  }

  panBy(dx, dy) {
    const { cx, cy, scale } = this.camera;
    this.camera = { cx: cx - dx / scale, cy: cy + dy / scale, scale };
  }

  /** The point nearest canvas CSS pixel (left, top) within `radius` pixels, or -1. A scan of
   * every point: 128k points take about a millisecond, less than a frame. */
  nearest(left, top, radius) {
    const [x, y] = this.toData(left, top);
    const limit = (radius / this.camera.scale) ** 2;
    let best = -1;
    let bestDistance = limit;
    const xs = this.x;
    const ys = this.y;
    for (let i = 0; i < this.count; i += 1) {
      const dx = xs[i] - x;
      const dy = ys[i] - y;
      const d = dx * dx + dy * dy;
      if (d <= bestDistance) {
        bestDistance = d;
        best = i;
      }
    }
    return best;
  }
}

function link(gl, vertexSource, fragmentSource) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vertexSource],
    [gl.FRAGMENT_SHADER, fragmentSource]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error(`the map's shader did not compile: ${gl.getShaderInfoLog(shader)}`);
    }
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
    throw new Error(`the map's shaders did not link: ${gl.getProgramInfoLog(program)}`);
  }
  return program;
}
