// `"plugins": [{ "name": "tsnn/plugin" }]` in tsconfig.json: tsserver loads this module (see transformer/src/plugin.ts).
module.exports = require('../transformer/dist/plugin.js');
