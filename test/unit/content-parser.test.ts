import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContentParser } from '../../src/adapters/parsing/content.parser';
import { AppError } from '../../src/errors';

const parser = new ContentParser();

function assertNoText(content: string, type: 'TEXT' | 'MARKDOWN' | 'HTML'): void {
  assert.throws(
    () => parser.parse(content, type),
    (error: unknown) => error instanceof AppError && error.code === 'BAD_USER_INPUT' && /no text/.test(error.message),
  );
}

describe('ContentParser: HTML', () => {
  it('drops script, style, noscript, template, svg and head, but keeps the <title> as title', () => {
    const html = `<!doctype html><html><head><title>  The   Guide </title><meta charset="utf-8">
      <style>body { color: red }</style><script>var secret = "x";</script></head>
      <body><script>alert("hi")</script><noscript>Enable JS</noscript><template><p>tmpl</p></template>
      <svg><title>icon</title><text>svg text</text></svg><p>Visible words.</p></body></html>`;
    const { text, title } = parser.parse(html, 'HTML');
    assert.equal(title, 'The Guide');
    assert.equal(text, 'Visible words.');
  });

  it('decodes entities and collapses inline whitespace', () => {
    const { text } = parser.parse('<p>Fish &amp; chips&nbsp;&mdash; 5&lt;6 &#x263A;\n   <b>bold</b>   <i>and</i>\titalic</p>', 'HTML');
    assert.equal(text, 'Fish & chips \u2014 5<6 \u263a bold and italic');
  });

  it('turns block elements into line and paragraph breaks', () => {
    const html =
      '<h1>Title</h1><p>First paragraph.</p><div>Line one</div><div>Line two</div>' +
      '<ul><li>apple</li><li>pear</li></ul><p>a<br>b<br><br>c</p>' +
      '<table><tr><th>Name</th><th>Qty</th></tr><tr><td>nut</td><td>3</td></tr></table>' +
      '<blockquote>Quoted</blockquote><section><article>Inside</article></section>';
    const { text } = parser.parse(html, 'HTML');
    assert.equal(
      text,
      'Title\n\nFirst paragraph.\n\nLine one\nLine two\n\napple\npear\n\na\nb\n\nc\n\nName | Qty\nnut | 3\n\nQuoted\n\nInside',
    );
  });

  it('keeps <pre> verbatim', () => {
    const { text } = parser.parse('<p>Code:</p><pre>if (x) {\n    y();\n}</pre>', 'HTML');
    assert.equal(text, 'Code:\n\nif (x) {\n    y();\n}');
  });

  it('drops hidden elements', () => {
    const { text } = parser.parse('<p>shown</p><div hidden>gone</div><span style="display: none">also gone</span>', 'HTML');
    assert.equal(text, 'shown');
  });

  it('takes the first <h1> as title when there is no <title>', () => {
    const { title } = parser.parse('<body><h2>Sub</h2><h1> Main  <em>heading</em></h1><h1>Second</h1></body>', 'HTML');
    assert.equal(title, 'Main heading');
    assert.equal(parser.parse('<p>no heading</p>', 'HTML').title, null);
  });

  it('refuses HTML without visible text', () => {
    assertNoText('<html><head><title>Only a title</title></head><body><script>x()</script> &nbsp; </body></html>', 'HTML');
  });
});

describe('ContentParser: TEXT and MARKDOWN', () => {
  it('normalises newlines and whitespace in text, keeping paragraph breaks', () => {
    const { text, title } = parser.parse('\uFEFF  Hello \t  world\r\nsecond line  \r\n\r\n\r\n\r\nNew   paragraph\u0007.  \n', 'TEXT');
    assert.equal(text, 'Hello world\nsecond line\n\nNew paragraph.');
    assert.equal(title, null);
  });

  it('keeps Markdown as Markdown and takes the first level-1 heading as title', () => {
    const md = '```\n# not a title\n```\r\n\r\n## Intro\r\n\r\n# The **kbql** [Guide](http://x) #\r\n\r\n    indented code\r\n- item';
    const { text, title } = parser.parse(md, 'MARKDOWN');
    assert.equal(title, 'The kbql Guide');
    assert.equal(text, '```\n# not a title\n```\n\n## Intro\n\n# The **kbql** [Guide](http://x) #\n\n    indented code\n- item');
    assert.equal(parser.parse('no heading here', 'MARKDOWN').title, null);
  });

  it('refuses empty text and Markdown', () => {
    assertNoText('   \n\n\t ', 'TEXT');
    assertNoText('', 'MARKDOWN');
  });
});
