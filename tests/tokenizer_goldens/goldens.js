// Golden encodings from an independent implementation: @lenml/tokenizers (transformers.js's
// tokenizers). Usage: node goldens.js NPM_DIR REQUEST.json OUT.json
// REQUEST: {"tokenizers": [{"name", "json": path of tokenizer.json, "config": path of
// tokenizer_config.json}], "texts": [string, ...]}
// OUT: {name: [{"with_special": [ids], "plain": [ids], "decoded": string}, ...]} with one entry per
// text; decoded = decode(plain ids) without cleaning up spaces.
const path = require("path");
const fs = require("fs");
const [npmDir, requestPath, outPath] = process.argv.slice(2);
const { TokenizerLoader } = require(path.join(npmDir, "node_modules", "@lenml", "tokenizers"));
const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
const out = {};
for (const t of request.tokenizers) {
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(t.json, "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(t.config, "utf8")),
  });
  out[t.name] = request.texts.map((text) => {
    const withSpecial = tok.encode(text, { add_special_tokens: true });
    const plain = tok.encode(text, { add_special_tokens: false });
    const decoded = plain.length === 0 ? "" : tok.decode(plain, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    return { with_special: withSpecial, plain: plain, decoded: decoded };
  });
}
fs.writeFileSync(outPath, JSON.stringify(out));
