'use strict';
// The node half of harbor-ha's fast provider import (harbor_ha/aws.py loads it into jsii's node processes
// with NODE_OPTIONS=--require).
//
// When jsii loads the @cdktf/provider-aws assembly, its kernel requires the package root, lib/index.js, which
// is nothing but `exports.<name> = require("./<module>");` for all 2,135 resource modules (about 250 MB of
// JavaScript, seconds to compile). The kernel only ever reaches a type through `closure.<module>.<Type>`, so
// this hook answers that require with an object of getters that load a module the first time it is read.
// A root that is not made of plain re-exports alone is loaded as usual, as is anything on any error.
//
// HARBOR_HA_NODE_REPORT=<file>: at exit, write how many of the root's modules were loaded, as JSON.

const fs = require('fs');
const Module = require('module');
const path = require('path');

const PACKAGE = '@cdktf/provider-aws';
const REEXPORT = /^exports\.(\w+) = require\("(\.\/[\w.-]+)"\);$/;
const BOILERPLATE = [
  /^\s*$/,
  /^"use strict";$/,
  /^\s*(\/\*\*|\*|\*\/|\/\/)/,
  /^Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);$/,
  /^exports\.\w+( = exports\.\w+)* = void 0;$/,
];

// execArgv: the options this node process runs with (harbor_ha/node/jsii-node's among them).
const report = { package: PACKAGE, roots: 0, modules: 0, loaded: [], execArgv: process.execArgv };

function packageNameOf(indexFile) {
  try {
    return JSON.parse(fs.readFileSync(path.join(path.dirname(indexFile), '..', 'package.json'), 'utf8')).name;
  } catch {
    return undefined;
  }
}

// [[exportName, relativePath], ...] when the file holds only re-exports, else undefined.
function reexportsOf(indexFile) {
  const entries = [];
  for (const line of fs.readFileSync(indexFile, 'utf8').split('\n')) {
    const match = REEXPORT.exec(line);
    if (match) {
      entries.push([match[1], match[2]]);
    } else if (!BOILERPLATE.some((pattern) => pattern.test(line))) {
      return undefined;
    }
  }
  return entries.length > 0 ? entries : undefined;
}

function lazyRoot(indexFile, parent) {
  const entries = reexportsOf(indexFile);
  if (!entries) {
    return undefined;
  }
  const requireFromRoot = Module.createRequire(indexFile);
  const exported = {};
  Object.defineProperty(exported, '__esModule', { value: true });
  for (const [name, relative] of entries) {
    Object.defineProperty(exported, name, {
      enumerable: true,
      configurable: true,
      get() {
        const value = requireFromRoot(relative);
        Object.defineProperty(exported, name, { value, enumerable: true, writable: true, configurable: true });
        report.loaded.push(name);
        return value;
      },
    });
  }
  const module = new Module(indexFile, parent);
  module.filename = indexFile;
  module.paths = Module._nodeModulePaths(path.dirname(indexFile));
  module.exports = exported;
  module.loaded = true;
  Module._cache[indexFile] = module;
  report.roots += 1;
  report.modules += entries.length;
  return exported;
}

const load = Module._load;
Module._load = function loadProviderRootLazily(request, parent, isMain) {
  if (!isMain && typeof request === 'string' && request.includes('provider-aws')) {
    try {
      const filename = Module._resolveFilename(request, parent, isMain);
      if (Module._cache[filename]) {
        return Module._cache[filename].exports;
      }
      if (filename.endsWith(`${path.sep}lib${path.sep}index.js`) && packageNameOf(filename) === PACKAGE) {
        const exported = lazyRoot(filename, parent);
        if (exported) {
          return exported;
        }
      }
    } catch {
      // Whatever went wrong, the ordinary loader decides (and reports its own errors).
    }
  }
  return load.apply(this, arguments);
};

if (process.env.HARBOR_HA_NODE_REPORT) {
  process.on('exit', () => {
    if (report.roots > 0) {
      fs.writeFileSync(process.env.HARBOR_HA_NODE_REPORT, JSON.stringify(report));
    }
  });
}
