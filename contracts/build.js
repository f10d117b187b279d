#!/usr/bin/env node
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// gmrelay contract build pipeline.
//
//   node contracts/build.js           compile contracts/src/**/*.sol and (re)write
//                                     contracts/artifacts/<ContractName>.json
//   node contracts/build.js --check   compile in memory and compare with the
//                                     committed artifacts; exit 1 naming every
//                                     stale, missing or extra artifact
//
// Compiler: solc-js 0.8.23 from tools/node_modules (the pinned tool set), standard
// JSON input, evmVersion "shanghai" (Metis Andromeda has no Cancun opcodes),
// optimizer enabled with 200 runs, legacy code generator (no viaIR).
//
// Artifacts are rendered deterministically (fixed key order, ABI object keys
// sorted, 2-space indent, trailing newline) so that a rebuild from the same
// sources is byte-identical. Only deployable contracts are written: interfaces,
// abstract contracts and libraries are skipped.
//
// Every bytecode (creation and runtime) is disassembled linearly, skipping PUSH
// immediates and the CBOR metadata trailers solc appends, and the build fails if
// a Cancun-only opcode (TLOAD, TSTORE, MCOPY, BLOBHASH, BLOBBASEFEE) is found.
'use strict';

const fs = require('fs');
const path = require('path');

const CONTRACTS_DIR = __dirname;
const ROOT_DIR = path.resolve(CONTRACTS_DIR, '..');
const SRC_DIR = path.join(CONTRACTS_DIR, 'src');
const ARTIFACTS_DIR = path.join(CONTRACTS_DIR, 'artifacts');
const SOLC_PATH = path.join(ROOT_DIR, 'tools', 'node_modules', 'solc');

const EXPECTED_SOLC = '0.8.23';
const EVM_VERSION = 'shanghai';
const OPTIMIZER = { enabled: true, runs: 200 };

/** Opcodes introduced by Cancun (EIP-1153, EIP-5656, EIP-4844, EIP-7516). */
const CANCUN_OPCODES = {
  0x49: 'BLOBHASH',
  0x4a: 'BLOBBASEFEE',
  0x5c: 'TLOAD',
  0x5d: 'TSTORE',
  0x5e: 'MCOPY',
};

function fail(message) {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(1);
}

function rel(p) {
  return path.relative(ROOT_DIR, p).split(path.sep).join('/');
}

function loadSolc() {
  let solc;
  try {
    solc = require(SOLC_PATH);
  } catch (e) {
    fail(`cannot load solc-js from ${rel(SOLC_PATH)}: ${e.message}\n` +
      'install the pinned tools first (npm ci --prefix tools)');
  }
  const version = solc.version();
  if (!version.startsWith(EXPECTED_SOLC + '+')) {
    fail(`expected solc ${EXPECTED_SOLC}, found ${version}`);
  }
  return solc;
}

/** All .sol files under dir, as sorted absolute paths. */
function findSources(dir) {
  const out = [];
  const walk = (d) => {
    const entries = fs.readdirSync(d, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.sol')) out.push(full);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

/** Source unit name of a file: its path relative to contracts/, with '/'. */
function sourceName(file) {
  return path.relative(CONTRACTS_DIR, file).split(path.sep).join('/');
}

function compile(solc) {
  const files = findSources(SRC_DIR);
  if (files.length === 0) fail(`no Solidity sources under ${rel(SRC_DIR)}`);

  const sources = {};
  for (const file of files) {
    sources[sourceName(file)] = { content: fs.readFileSync(file, 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: OPTIMIZER.enabled, runs: OPTIMIZER.runs },
      outputSelection: {
        '*': {
          '': ['ast'],
          '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'],
        },
      },
    },
  };

  // Every file under src/ is already in the input, so relative imports between them
  // resolve without a callback; anything outside src/ is refused.
  const findImports = (importPath) => ({ error: `import not found: ${importPath}` });

  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const diagnostics = output.errors || [];
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity !== 'error');
  for (const w of warnings) process.stderr.write(w.formattedMessage || w.message);
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(e.formattedMessage || e.message);
    fail(`compilation failed with ${errors.length} error(s)`);
  }
  return { output, version: solc.version() };
}

/** Contract kind ("contract", "interface", "library") and abstractness from the AST. */
function contractKinds(output) {
  const kinds = {};
  for (const [src, unit] of Object.entries(output.sources || {})) {
    for (const node of (unit.ast && unit.ast.nodes) || []) {
      if (node.nodeType === 'ContractDefinition') {
        kinds[`${src}:${node.name}`] = { kind: node.contractKind, abstract: !!node.abstract };
      }
    }
  }
  return kinds;
}

/** Recursively sorts object keys (arrays keep their order). */
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
    return out;
  }
  return value;
}

/**
 * Byte ranges [start, end) of the CBOR metadata trailers in code. solc ends every
 * runtime object with `<cbor map> <uint16 length>`; the map always ends with the
 * "solc" key and a 3-byte version ("64 736f6c63 43 xx xx xx"). Creation code embeds
 * the runtime object, so a trailer can also occur in the middle.
 */
function metadataRanges(code) {
  const ranges = [];
  const marker = Buffer.from('64736f6c6343', 'hex'); // text(4) "solc", bytes(3)
  let from = 0;
  for (;;) {
    const at = code.indexOf(marker, from);
    if (at < 0) break;
    const lenPos = at + marker.length + 3;
    if (lenPos + 2 <= code.length) {
      const len = code.readUInt16BE(lenPos);
      const start = lenPos - len;
      if (start >= 0 && code[start] >= 0xa1 && code[start] <= 0xa7) {
        ranges.push([start, lenPos + 2]);
      }
    }
    from = at + 1;
  }
  return ranges;
}

/** Cancun opcodes found in hex code, as [{offset, name}], skipping PUSH data and metadata. */
function findCancunOpcodes(hex) {
  const code = Buffer.from(hex.replace(/^0x/, ''), 'hex');
  const ranges = metadataRanges(code);
  const found = [];
  // Walk each code segment between metadata trailers from its first byte.
  let segStart = 0;
  const segments = [];
  for (const [s, e] of ranges) {
    if (s > segStart) segments.push([segStart, s]);
    segStart = Math.max(segStart, e);
  }
  if (segStart < code.length) segments.push([segStart, code.length]);
  for (const [s, e] of segments) {
    for (let pc = s; pc < e; pc++) {
      const op = code[pc];
      if (CANCUN_OPCODES[op]) found.push({ offset: pc, name: CANCUN_OPCODES[op] });
      if (op >= 0x60 && op <= 0x7f) pc += op - 0x5f; // PUSH1..PUSH32 immediates
    }
  }
  return found;
}

/** Renders every deployable contract as { file -> text }, failing on Cancun opcodes. */
function renderArtifacts(output, version) {
  const kinds = contractKinds(output);
  const artifacts = {};
  const origin = {};
  const problems = [];
  for (const src of Object.keys(output.contracts || {}).sort()) {
    for (const name of Object.keys(output.contracts[src]).sort()) {
      const c = output.contracts[src][name];
      const kind = kinds[`${src}:${name}`] || { kind: 'contract', abstract: false };
      const bytecode = c.evm.bytecode.object;
      const deployed = c.evm.deployedBytecode.object;
      if (kind.kind !== 'contract' || kind.abstract || bytecode.length === 0) continue;
      if (/[^0-9a-f]/i.test(bytecode) || /[^0-9a-f]/i.test(deployed)) {
        problems.push(`${src}:${name} needs library linking, which this pipeline does not support`);
        continue;
      }
      for (const [label, hex] of [['bytecode', bytecode], ['deployedBytecode', deployed]]) {
        for (const hit of findCancunOpcodes(hex)) {
          problems.push(`${src}:${name}: ${label} contains Cancun opcode ${hit.name} ` +
            `at byte ${hit.offset} (Metis Andromeda is Shanghai)`);
        }
      }
      if (origin[name]) {
        problems.push(`contract name ${name} is defined in both ${origin[name]} and ${src}`);
        continue;
      }
      origin[name] = src;
      const artifact = {
        contractName: name,
        sourceName: src,
        abi: sortKeys(c.abi),
        bytecode: '0x' + bytecode.toLowerCase(),
        deployedBytecode: '0x' + deployed.toLowerCase(),
        compiler: {
          version,
          evmVersion: EVM_VERSION,
          optimizer: { enabled: OPTIMIZER.enabled, runs: OPTIMIZER.runs },
        },
      };
      artifacts[`${name}.json`] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  if (problems.length > 0) fail(problems.join('\n'));
  return artifacts;
}

function existingArtifacts() {
  if (!fs.existsSync(ARTIFACTS_DIR)) return [];
  return fs.readdirSync(ARTIFACTS_DIR).filter((f) => f.endsWith('.json')).sort();
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) fail(`usage: node contracts/build.js [--check] (unknown: ${unknown.join(' ')})`);
  const check = args.includes('--check');

  const solc = loadSolc();
  const { output, version } = compile(solc);
  const artifacts = renderArtifacts(output, version);
  const names = Object.keys(artifacts).sort();
  const present = existingArtifacts();

  if (check) {
    const problems = [];
    for (const file of names) {
      const target = path.join(ARTIFACTS_DIR, file);
      if (!fs.existsSync(target)) {
        problems.push(`${rel(target)} is missing: run make contracts`);
      } else if (fs.readFileSync(target, 'utf8') !== artifacts[file]) {
        problems.push(`${rel(target)} is stale: run make contracts`);
      }
    }
    for (const file of present) {
      if (!artifacts[file]) {
        problems.push(`${rel(path.join(ARTIFACTS_DIR, file))} is extra (no contract of that name): run make contracts`);
      }
    }
    if (problems.length > 0) fail(problems.join('\n'));
    process.stdout.write(`contracts: ${names.length} artifact(s) up to date (solc ${version}, ${EVM_VERSION})\n`);
    return;
  }

  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const file of present) {
    if (!artifacts[file]) {
      fs.unlinkSync(path.join(ARTIFACTS_DIR, file));
      process.stdout.write(`removed ${rel(path.join(ARTIFACTS_DIR, file))}\n`);
    }
  }
  for (const file of names) {
    const target = path.join(ARTIFACTS_DIR, file);
    const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null;
    if (old !== artifacts[file]) fs.writeFileSync(target, artifacts[file]);
    process.stdout.write(`${old === artifacts[file] ? 'unchanged' : 'wrote'} ${rel(target)}\n`);
  }
}

if (require.main === module) main();

module.exports = { findCancunOpcodes, metadataRanges, sortKeys };
