// Compiles the JSON Schema on stdin with ajv as editor tooling runs it:
// strict mode with every strict option on (strict: true, which includes
// strictRequired and strictTypes), Unicode regular expressions, and any
// strict-mode complaint that ajv would only log turned into a failure.
// Exit 0 and print "compiled" when it compiles; exit 1 with ajv's message
// otherwise. ajv is the one .ci/run installs under .ci/node.
"use strict";
const path = require("path");
const Ajv = require(require.resolve("ajv", {
  paths: [path.join(__dirname, "..", "..", ".ci", "node")],
}));

const complaints = [];
const logger = {
  log: () => {},
  warn: (...args) => complaints.push(args.join(" ")),
  error: (...args) => complaints.push(args.join(" ")),
};
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  try {
    const ajv = new Ajv({ strict: true, unicodeRegExp: true, allErrors: true, logger });
    ajv.compile(JSON.parse(input));
  } catch (e) {
    console.error(String(e && e.message ? e.message : e));
    process.exit(1);
  }
  if (complaints.length > 0) {
    console.error(complaints.join("\n"));
    process.exit(1);
  }
  console.log("compiled");
});
