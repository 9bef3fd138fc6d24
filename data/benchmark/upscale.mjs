// upscale.mjs — runs the packaged super-resolution generators offline
// (tfjs + its wasm backend in Node, no network). make-benchmark.py hands it
// a JSON-lines job list; each job is a raw RGB low-resolution crop to upscale
// with one generator, written back as raw RGB. Jobs whose output exists are
// skipped, so an interrupted run resumes.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
// the packages' exports maps hide package.json; they live in node_modules here
const pkgDir = (name) => path.join(here, 'node_modules', name);

// id → package, model.json inside it, scale, input range (RDN: 0..255,
// RRDN: 0..1, as the packages' own model definitions say).
export const GENERATORS = {
  'esrgan-slim-x2': ['@upscalerjs/esrgan-slim', 'models/x2/model.json', 2, 255],
  'esrgan-slim-x3': ['@upscalerjs/esrgan-slim', 'models/x3/model.json', 3, 255],
  'esrgan-slim-x4': ['@upscalerjs/esrgan-slim', 'models/x4/model.json', 4, 255],
  'esrgan-medium-x2': ['@upscalerjs/esrgan-medium', 'models/x2/model.json', 2, 255],
  'esrgan-medium-x3': ['@upscalerjs/esrgan-medium', 'models/x3/model.json', 3, 255],
  'esrgan-medium-x4': ['@upscalerjs/esrgan-medium', 'models/x4/model.json', 4, 255],
  'esrgan-thick-x2': ['@upscalerjs/esrgan-thick', 'models/x2/model.json', 2, 1],
  'esrgan-thick-x3': ['@upscalerjs/esrgan-thick', 'models/x3/model.json', 3, 1],
  'esrgan-thick-x4': ['@upscalerjs/esrgan-thick', 'models/x4/model.json', 4, 1],
  'default-model-x2': ['@upscalerjs/default-model', 'models/model.json', 2, 255],
  'div2k-rdn-x2': ['@upscalerjs/models', 'models/div2k/005-2x/model.json', 2, 1],
  'div2k-rdn-x3': ['@upscalerjs/models', 'models/div2k/019-3x/model.json', 3, 1],
  'div2k-rdn-x4': ['@upscalerjs/models', 'models/div2k/017-4x/model.json', 4, 1],
  'psnr-small-x2': ['@upscalerjs/models', 'models/psnr-small-quant-uint8/model.json', 2, 255],
  'idealo-gans-x4': ['@upscalerjs/models', 'models/idealo/gans/model.json', 4, 1],
};

// The RRDN models' two custom layers, as @upscalerjs/esrgan-thick defines them.
function registerCustomLayers () {
  class MultiplyBeta extends tf.layers.Layer {
    constructor (config) { super(config || {}); this.beta = 0.2; }
    call (inputs) { return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.beta); }
    static get className () { return 'MultiplyBeta'; }
  }
  tf.serialization.registerClass(MultiplyBeta);
  for (const s of [2, 3, 4, 8]) {
    const cls = class extends tf.layers.Layer {
      constructor (config) { super(config || {}); }
      computeOutputShape (shape) { return [shape[0], shape[1] && shape[1] * s, shape[2] && shape[2] * s, 3]; }
      call (inputs) { return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, s, 'NHWC'); }
      static get className () { return `PixelShuffle${s}x`; }
    };
    tf.serialization.registerClass(cls);
  }
  // the older idealo export names it plainly
  tf.serialization.registerClass(class extends tf.layers.Layer {
    constructor (config) { super(config || {}); this.s = 4; }
    computeOutputShape (shape) { return [shape[0], shape[1] && shape[1] * 4, shape[2] && shape[2] * 4, 3]; }
    call (inputs) { return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, 4, 'NHWC'); }
    static get className () { return 'PixelShuffle'; }
  });
}

// tf.loadLayersModel with file:// needs tfjs-node; read the files ourselves.
async function loadModel (id) {
  const [pkg, rel] = GENERATORS[id];
  const file = path.join(pkgDir(pkg), rel);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths)
      buffers.push(fs.readFileSync(path.join(path.dirname(file), p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs, weightData,
  }));
}

async function main () {
  const jobsFile = process.argv[2];
  if (!jobsFile) {
    console.error('usage: node upscale.mjs JOBS.jsonl   (or --list)');
    process.exit(2);
  }
  if (jobsFile === '--list') {
    console.log(Object.keys(GENERATORS).join('\n'));
    return;
  }
  setWasmPaths(path.join(pkgDir('@tensorflow/tfjs-backend-wasm'), 'dist') + '/');
  await tf.setBackend('wasm');
  registerCustomLayers();
  const jobs = fs.readFileSync(jobsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const todo = jobs.filter((j) => !fs.existsSync(j.out));
  // one generator at a time: each model is loaded once
  todo.sort((a, b) => a.generator.localeCompare(b.generator));
  let model = null;
  let current = null;
  let done = 0;
  const t0 = Date.now();
  for (const job of todo) {
    if (job.generator !== current) {
      if (model) model.dispose();
      if (!GENERATORS[job.generator]) throw new Error(`unknown generator ${job.generator}`);
      model = await loadModel(job.generator);
      current = job.generator;
    }
    const [, , scale, range] = GENERATORS[job.generator];
    const raw = fs.readFileSync(job.in);
    if (raw.length !== job.w * job.h * 3) throw new Error(`${job.in}: expected ${job.w}x${job.h} RGB`);
    const out = tf.tidy(() => {
      let x = tf.tensor4d(new Float32Array(raw), [1, job.h, job.w, 3]);
      if (range === 1) x = x.div(255);
      let y = model.predict(x);
      if (range === 1) y = y.mul(255);
      return y.clipByValue(0, 255).round().toInt();
    });
    const [, oh, ow] = out.shape;
    if (oh !== job.h * scale || ow !== job.w * scale)
      throw new Error(`${job.generator}: output ${ow}x${oh}, expected ${job.w * scale}x${job.h * scale}`);
    const data = Uint8Array.from(await out.data());
    out.dispose();
    fs.writeFileSync(job.out + '.tmp', data);
    fs.renameSync(job.out + '.tmp', job.out);
    done++;
    if (done % 20 === 0 || done === todo.length) {
      const s = (Date.now() - t0) / 1000;
      console.log(`upscale: ${done}/${todo.length} (${(s / done).toFixed(2)} s each, ${current})`);
    }
  }
  if (model) model.dispose();
}

main().catch((e) => { console.error(`upscale: ${e.message}`); process.exit(1); });
