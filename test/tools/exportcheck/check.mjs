// check.mjs - reads svc-qgen exports back with real parsers and compares them with the set.
//
//   node check.mjs SET.json FILE...      (exit 0: every file matches; 1: a mismatch; 2: usage)
//
// SET.json is the v1 question set with answers (GET /api/v1/question-sets/ID?include_answers=true):
// questions[] of {type, text, options, answer (index | reference), explanation, difficulty,
// source {page, quote}}.
// Each FILE's format comes from its name: .txt GIFT, .csv Anki CSV, .zip QTI 2.1 content package.
//
// DESIGN. The parsers are the ones importers use or mirror, never this project's code:
//  - GIFT: gift-pegjs, a PEG grammar of Moodle's GIFT format. Every question must parse, in
//    order, titled Q1..Qn, with the set's text, options, one correct choice at the set's key and
//    the explanation (open: reference + explanation) as general feedback. The source passage is
//    a "//" comment line, which the grammar must skip.
//  - CSV: csv-parse (RFC 4180), reading as Anki does: '#' starts a comment only at the start of
//    a record (Anki's reader; csv-parse's comment_no_infix), the four "#key:value" header lines
//    first. Front = text plus "A) option" lines, back = "K) correct option" + explanation,
//    tags, source = "p. N: <quote>" (or empty).
//  - QTI: yauzl opens the zip (CRC-32 of each entry checked here, yauzl checks sizes), libxml2
//    (libxml2-wasm, the parser PHP's DOM and so Moodle use) parses each file with namespaces.
//    No npm package ships the IMS QTI 2.1 schema (imsqti_v2p1.xsd), so instead of XSD validation
//    the rules below that the schema and the QTI 2.1 spec state for the elements we write are
//    checked: required attributes, child order of assessmentItem, identifiers, and the
//    references between them (manifest -> files -> items, interaction -> responseDeclaration,
//    correctResponse -> simpleChoice, variables and modalFeedback -> outcomeDeclaration).
// Expected text is cleaned as svc-qgen's exporter documents (CRLF/CR -> LF, C0 controls but
// tab/LF, DEL, U+FFFE/U+FFFF dropped), then compared exactly: a special character that does not
// round-trip is a mismatch.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { XmlDocument, XmlElement, XmlText, XmlCData } from 'libxml2-wasm';

const require = createRequire(import.meta.url);
const gift = require('gift-pegjs');
const { parse: csvParse } = require('csv-parse/sync');
const yauzl = require('yauzl');

const QTI_NS = 'http://www.imsglobal.org/xsd/imsqti_v2p1';
const CP_NS = 'http://www.imsglobal.org/xsd/imscp_v1p1';
const MATCH_CORRECT = 'http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct';
const CSV_HEADER = ['#separator:comma', '#html:false', '#tags column:3',
  '#columns:Front,Back,Tags,Source'];
// QTI 2.1 assessmentItem content, in schema order (all optional here but the ones we need).
const ITEM_ORDER = ['responseDeclaration', 'outcomeDeclaration', 'templateDeclaration',
  'templateProcessing', 'stylesheet', 'itemBody', 'responseProcessing', 'modalFeedback'];
const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]*$/; // QTI identifier: an xs:NCName without ':'

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);
const show = (s) => JSON.stringify(s);

function expectEq(where, what, got, want) {
  if (got !== want) fail(where, `${what} is ${show(got)}, want ${show(want)}`);
}

/* What the exporter makes of a string (export.c, text_next). */
function clean(s) {
  return (s ?? '').replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFE\uFFFF]/g, '');
}

function loadSet(file) {
  const set = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(set.questions) || set.questions.length === 0)
    throw new Error(`${file}: no questions`);
  return set.questions.map((q, i) => {
    const mcq = q.type === 'mcq';
    if (mcq && (!Array.isArray(q.options) || !Number.isInteger(q.answer)))
      throw new Error(`${file}: question ${i + 1} has no options or answer (include_answers?)`);
    if (!mcq && q.type !== 'open') throw new Error(`${file}: question ${i + 1}: type ${q.type}`);
    return {
      mcq,
      text: clean(q.text),
      options: mcq ? q.options.map(clean) : [],
      answer: mcq ? q.answer : -1,
      reference: mcq ? '' : clean(q.answer),
      explanation: clean(q.explanation),
      difficulty: q.difficulty ?? '',
      page: q.source?.page ?? 0,
      quote: clean(q.source?.quote ?? ''),
    };
  });
}

const letter = (i) => String.fromCharCode(65 + i);
const joinNonEmpty = (parts, sep) => parts.filter((p) => p !== '').join(sep);

/* ---- GIFT ---------------------------------------------------------------------------------- */

function checkGift(file, set) {
  let items;
  try {
    items = gift.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const at = e.location ? ` at line ${e.location.start.line}` : '';
    fail(file, `gift-pegjs: ${e.message}${at}`);
    return;
  }
  expectEq(file, 'question count', items.length, set.length);
  items.slice(0, set.length).forEach((it, i) => {
    const q = set[i];
    const w = `${file} Q${i + 1}`;
    expectEq(w, 'title', it.title, `Q${i + 1}`);
    expectEq(w, 'stem format', it.stem?.format, 'plain');
    expectEq(w, 'text', it.stem?.text, q.text);
    const fb = q.mcq ? q.explanation : joinNonEmpty([q.reference, q.explanation], '\n\n');
    expectEq(w, 'general feedback', it.globalFeedback?.text ?? '', fb);
    if (!q.mcq) {
      expectEq(w, 'type', it.type, 'Essay');
      return;
    }
    expectEq(w, 'type', it.type, 'MC');
    const ch = it.choices ?? [];
    expectEq(w, 'choice count', ch.length, q.options.length);
    ch.forEach((c, j) => {
      expectEq(w, `choice ${j + 1}`, c.text?.text, q.options[j]);
      expectEq(w, `choice ${j + 1} correct`, c.isCorrect, j === q.answer);
      expectEq(w, `choice ${j + 1} weight`, c.weight, null);
    });
  });
}

/* ---- Anki CSV ------------------------------------------------------------------------------ */

function checkCsv(file, set) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\r\n');
  CSV_HEADER.forEach((h, i) => expectEq(file, `header line ${i + 1}`, lines[i], h));
  let rows;
  try {
    rows = csvParse(text, { comment: '#', comment_no_infix: true, bom: false,
      relax_quotes: false, relax_column_count: false, skip_empty_lines: false });
  } catch (e) {
    fail(file, `csv-parse: ${e.message}`);
    return;
  }
  expectEq(file, 'record count', rows.length, set.length);
  rows.slice(0, set.length).forEach((r, i) => {
    const q = set[i];
    const w = `${file} record ${i + 1}`;
    if (r.length !== 4) {
      fail(w, `${r.length} fields, want 4 (front, back, tags, source)`);
      return;
    }
    const front = q.text + q.options.map((o, j) => `\n${letter(j)}) ${o}`).join('');
    const key = q.mcq ? `${letter(q.answer)}) ${q.options[q.answer]}` : q.reference;
    expectEq(w, 'front', r[0], front);
    expectEq(w, 'back', r[1], joinNonEmpty([key, q.explanation], '\n\n'));
    expectEq(w, 'tags', r[2], joinNonEmpty([q.mcq ? 'mcq' : 'open', q.difficulty], ' '));
    expectEq(w, 'source', r[3], q.quote !== '' ? `p. ${q.page}: ${q.quote}` : '');
  });
}

/* ---- QTI: zip ------------------------------------------------------------------------------ */

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/* The zip's entries as a Map name -> Buffer, in order, CRC-checked. */
function readZip(file) {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true },
      (err, zip) => {
        if (err) return reject(err);
        const out = new Map();
        zip.on('error', reject);
        zip.on('end', () => resolve(out));
        zip.on('entry', (e) => {
          if (out.has(e.fileName)) return reject(new Error(`duplicate entry ${e.fileName}`));
          zip.openReadStream(e, (err2, rs) => {
            if (err2) return reject(err2);
            const parts = [];
            rs.on('data', (d) => parts.push(d));
            rs.on('error', reject);
            rs.on('end', () => {
              const data = Buffer.concat(parts);
              if (crc32(data) !== e.crc32) return reject(new Error(`${e.fileName}: bad CRC-32`));
              out.set(e.fileName, data);
              zip.readEntry();
            });
          });
        });
        zip.readEntry();
      });
  });
}

/* ---- QTI: XML ------------------------------------------------------------------------------ */

/* Parses with libxml2 into plain objects {name, ns, attrs, kids, text} and frees the document. */
function parseXml(where, buf) {
  let doc;
  try {
    doc = XmlDocument.fromBuffer(buf);
  } catch (e) {
    fail(where, `libxml2: ${e.message.trim()}`);
    return null;
  }
  const conv = (el) => {
    const o = { name: el.name, ns: el.namespaceUri, attrs: {}, kids: [], text: '' };
    for (const a of el.attrs) o.attrs[a.prefix ? `${a.prefix}:${a.name}` : a.name] = a.value;
    for (let c = el.firstChild; c !== null; c = c.next) {
      if (c instanceof XmlElement) o.kids.push(conv(c));
      else if (c instanceof XmlText || c instanceof XmlCData) o.kids.push({ text: c.content });
    }
    return o;
  };
  const root = conv(doc.root);
  doc.dispose();
  return root;
}

const kids = (el, name) => el.kids.filter((k) => k.name === name);
const kid = (el, name) => kids(el, name)[0] ?? null;
/* Every element below el (depth first) */
function* walk(el) {
  for (const k of el.kids) {
    if (k.name === undefined) continue;
    yield k;
    yield* walk(k);
  }
}
/* Text of mixed content, <br/> read as a newline (how the exporter writes newlines). */
function flow(el) {
  return el.kids.map((k) => (k.name === undefined ? k.text : k.name === 'br' ? '\n' : flow(k)))
    .join('');
}

function requireAttrs(where, el, names) {
  for (const n of names)
    if (el.attrs[n] === undefined || el.attrs[n] === '') fail(where, `<${el.name}> lacks ${n}`);
}

function checkIdent(where, el, attr) {
  const v = el.attrs[attr];
  if (v !== undefined && !IDENT.test(v)) fail(where, `<${el.name} ${attr}=${show(v)}> not an identifier`);
}

function checkBool(where, el, attr) {
  const v = el.attrs[attr];
  if (v !== undefined && v !== 'true' && v !== 'false') fail(where, `<${el.name} ${attr}=${show(v)}> not a boolean`);
}

function checkManifest(where, m, files) {
  if (m.name !== 'manifest' || m.ns !== CP_NS) {
    fail(where, `root is <${m.name}> in ${show(m.ns)}, want <manifest> in ${CP_NS}`);
    return null;
  }
  requireAttrs(where, m, ['identifier']);
  const res = kids(kid(m, 'resources') ?? { kids: [] }, 'resource');
  const ids = new Map();
  for (const r of res) {
    requireAttrs(where, r, ['identifier', 'type']);
    if (ids.has(r.attrs.identifier)) fail(where, `resource ${r.attrs.identifier} twice`);
    ids.set(r.attrs.identifier, r);
    for (const f of kids(r, 'file'))
      if (!files.has(f.attrs.href)) fail(where, `file ${show(f.attrs.href)} is not in the zip`);
    if (r.attrs.href !== undefined && !files.has(r.attrs.href))
      fail(where, `resource href ${show(r.attrs.href)} is not in the zip`);
  }
  const tests = res.filter((r) => r.attrs.type === 'imsqti_test_xmlv2p1');
  const items = res.filter((r) => r.attrs.type === 'imsqti_item_xmlv2p1');
  expectEq(where, 'test resources', tests.length, 1);
  for (const d of tests.flatMap((t) => kids(t, 'dependency')))
    if (!ids.has(d.attrs.identifierref)) fail(where, `dependency on unknown ${d.attrs.identifierref}`);
  const listed = new Set(res.flatMap((r) => kids(r, 'file').map((f) => f.attrs.href)));
  for (const name of files.keys())
    if (name !== 'imsmanifest.xml' && !listed.has(name)) fail(where, `${name} is in no resource`);
  return { test: tests[0]?.attrs.href, items: items.map((r) => r.attrs.href) };
}

/* The item hrefs of test.xml, in order. */
function checkTest(where, t) {
  if (t.name !== 'assessmentTest' || t.ns !== QTI_NS) {
    fail(where, `root is <${t.name}> in ${show(t.ns)}, want <assessmentTest> in ${QTI_NS}`);
    return [];
  }
  requireAttrs(where, t, ['identifier', 'title']);
  const refs = [];
  const seen = new Set();
  for (const el of [t, ...walk(t)]) {
    checkIdent(where, el, 'identifier');
    if (el.attrs.identifier !== undefined && el.name !== 'assessmentTest') {
      if (seen.has(el.attrs.identifier)) fail(where, `identifier ${el.attrs.identifier} twice`);
      seen.add(el.attrs.identifier);
    }
    if (el.name === 'testPart') {
      requireAttrs(where, el, ['identifier', 'navigationMode', 'submissionMode']);
      if (!['linear', 'nonlinear'].includes(el.attrs.navigationMode)) fail(where, 'bad navigationMode');
      if (!['individual', 'simultaneous'].includes(el.attrs.submissionMode)) fail(where, 'bad submissionMode');
    }
    if (el.name === 'assessmentSection') {
      requireAttrs(where, el, ['identifier', 'title', 'visible']);
      checkBool(where, el, 'visible');
    }
    if (el.name === 'assessmentItemRef') {
      requireAttrs(where, el, ['identifier', 'href']);
      refs.push(el.attrs.href);
    }
  }
  if (kids(t, 'testPart').length === 0) fail(where, 'no testPart');
  return refs;
}

/* One assessmentItem against question q. */
function checkItem(where, it, q) {
  if (it.name !== 'assessmentItem' || it.ns !== QTI_NS) {
    fail(where, `root is <${it.name}> in ${show(it.ns)}, want <assessmentItem> in ${QTI_NS}`);
    return;
  }
  requireAttrs(where, it, ['identifier', 'title', 'adaptive', 'timeDependent']);
  checkBool(where, it, 'adaptive');
  checkBool(where, it, 'timeDependent');
  let last = -1;
  for (const k of it.kids) {
    if (k.name === undefined) {
      if (k.text.trim() !== '') fail(where, `text ${show(k.text)} directly in <assessmentItem>`);
      continue;
    }
    const pos = ITEM_ORDER.indexOf(k.name);
    if (pos < 0) fail(where, `<${k.name}> may not be a child of <assessmentItem>`);
    else if (pos < last) fail(where, `<${k.name}> out of schema order`);
    last = Math.max(last, pos);
  }
  for (const el of walk(it)) {
    checkIdent(where, el, 'identifier');
    checkIdent(where, el, 'responseIdentifier');
    checkIdent(where, el, 'outcomeIdentifier');
    if (el.ns !== QTI_NS) fail(where, `<${el.name}> outside the QTI namespace`);
  }

  const decl = new Map();
  for (const d of [...kids(it, 'responseDeclaration'), ...kids(it, 'outcomeDeclaration')]) {
    requireAttrs(where, d, ['identifier', 'cardinality']);
    if (decl.has(d.attrs.identifier)) fail(where, `variable ${d.attrs.identifier} declared twice`);
    decl.set(d.attrs.identifier, d);
  }
  if (!decl.has('SCORE')) fail(where, 'no SCORE outcome');
  const body = kid(it, 'itemBody');
  if (body === null) {
    fail(where, 'no itemBody');
    return;
  }
  const paras = kids(body, 'p');
  expectEq(where, 'text', paras.length > 0 ? flow(paras[0]) : null, q.text);

  const ci = kids(body, 'choiceInteraction');
  const et = kids(body, 'extendedTextInteraction');
  for (const x of [...ci, ...et]) {
    requireAttrs(where, x, ['responseIdentifier']);
    const rd = decl.get(x.attrs.responseIdentifier);
    if (rd === undefined || rd.name !== 'responseDeclaration')
      fail(where, `<${x.name}> answers undeclared ${x.attrs.responseIdentifier}`);
  }
  if (q.mcq) {
    expectEq(where, 'choiceInteractions', ci.length, 1);
    expectEq(where, 'extendedTextInteractions', et.length, 0);
    if (ci.length !== 1) return;
    requireAttrs(where, ci[0], ['shuffle', 'maxChoices']);
    checkBool(where, ci[0], 'shuffle');
    expectEq(where, 'maxChoices', ci[0].attrs.maxChoices, '1');
    const ch = kids(ci[0], 'simpleChoice');
    expectEq(where, 'choice count', ch.length, q.options.length);
    const ids = ch.map((c) => c.attrs.identifier);
    if (new Set(ids).size !== ids.length) fail(where, 'two simpleChoices share an identifier');
    ch.forEach((c, j) => expectEq(where, `choice ${j + 1}`, flow(c), q.options[j]));
    const rd = decl.get(ci[0].attrs.responseIdentifier);
    if (rd !== undefined) {
      expectEq(where, 'response cardinality', rd.attrs.cardinality, 'single');
      expectEq(where, 'response baseType', rd.attrs.baseType, 'identifier');
      const vals = kids(kid(rd, 'correctResponse') ?? { kids: [] }, 'value').map(flow);
      expectEq(where, 'correct values', vals.length, 1);
      const at = ids.indexOf(vals[0]);
      if (at < 0) fail(where, `correctResponse ${show(vals[0])} names no simpleChoice`);
      else expectEq(where, 'key', at, q.answer);
    }
  } else {
    expectEq(where, 'extendedTextInteractions', et.length, 1);
    expectEq(where, 'choiceInteractions', ci.length, 0);
  }

  /* Scoring and feedback refer to declared variables; feedback shows the explanation (open: the
   * reference first) and then the source passage. */
  const rp = kid(it, 'responseProcessing');
  if (rp !== null && rp.attrs.template !== undefined) {
    expectEq(where, 'response processing template', rp.attrs.template, MATCH_CORRECT);
    if (!q.mcq) fail(where, 'match_correct on an item without a correct response');
  }
  const setIds = new Set();
  for (const el of rp === null ? [] : walk(rp)) {
    if (['variable', 'correct', 'setOutcomeValue'].includes(el.name) && !decl.has(el.attrs.identifier))
      fail(where, `<${el.name}> refers to undeclared ${el.attrs.identifier}`);
    if (el.name === 'setOutcomeValue') {
      const bv = kid(el, 'baseValue');
      if (bv !== null) setIds.add(flow(bv));
    }
  }
  const mf = kids(it, 'modalFeedback');
  for (const f of mf) {
    requireAttrs(where, f, ['outcomeIdentifier', 'identifier', 'showHide']);
    const od = decl.get(f.attrs.outcomeIdentifier);
    if (od === undefined || od.name !== 'outcomeDeclaration' || od.attrs.baseType !== 'identifier')
      fail(where, `modalFeedback on ${f.attrs.outcomeIdentifier}: no identifier outcome`);
    if (f.attrs.showHide === 'show' && !setIds.has(f.attrs.identifier))
      fail(where, `modalFeedback ${f.attrs.identifier} is never shown`);
  }
  const want = [q.reference, q.explanation,
    q.quote !== '' ? `Source, page ${q.page}: ${q.quote}` : ''].filter((s) => s !== '');
  const got = mf.flatMap((f) => kids(f, 'p').map(flow));
  expectEq(where, 'feedback', show(got), show(want));
}

async function checkQti(file, set) {
  let files;
  try {
    files = await readZip(file);
  } catch (e) {
    fail(file, `yauzl: ${e.message}`);
    return;
  }
  const xml = (name) => {
    const b = files.get(name);
    if (b === undefined) {
      fail(file, `no ${name} in the zip`);
      return null;
    }
    return parseXml(`${file}:${name}`, b);
  };
  const m = xml('imsmanifest.xml');
  const man = m && checkManifest(`${file}:imsmanifest.xml`, m, files);
  if (!man || man.test === undefined) return;
  const t = xml(man.test);
  const refs = t ? checkTest(`${file}:${man.test}`, t) : [];
  expectEq(file, 'items in the test', refs.length, set.length);
  expectEq(file, 'items in the manifest', show(man.items), show(refs));
  refs.slice(0, set.length).forEach((href, i) => {
    const it = xml(href);
    if (it !== null) checkItem(`${file}:${href}`, it, set[i]);
  });
}

/* ---- main ---------------------------------------------------------------------------------- */

async function main(argv) {
  if (argv.length < 2) {
    process.stderr.write('usage: node check.mjs SET.json FILE.{txt,csv,zip}...\n');
    return 2;
  }
  const set = loadSet(argv[0]);
  for (const file of argv.slice(1)) {
    const before = errors.length;
    const ext = path.extname(file);
    if (ext === '.txt') checkGift(file, set);
    else if (ext === '.csv') checkCsv(file, set);
    else if (ext === '.zip') await checkQti(file, set);
    else {
      process.stderr.write(`${file}: unknown format (want .txt, .csv or .zip)\n`);
      return 2;
    }
    const fmt = { '.txt': 'GIFT', '.csv': 'CSV', '.zip': 'QTI' }[ext];
    if (errors.length === before)
      process.stdout.write(`exportcheck: ${fmt} ok: ${set.length} questions (${file})\n`);
  }
  for (const e of errors.slice(0, 50)) process.stderr.write(`exportcheck: ${e}\n`);
  if (errors.length > 50) process.stderr.write(`exportcheck: ... ${errors.length - 50} more\n`);
  return errors.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((rc) => process.exit(rc), (e) => {
  process.stderr.write(`exportcheck: ${e.stack ?? e}\n`);
  process.exit(2);
});
