import { expect } from "chai";
import { ContentCache } from "../../../src/pki/content-cache";

describe("ContentCache", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  it("derives once per content, whatever buffer carries it", () => {
    const cache = new ContentCache<number>(4);
    let derived = 0;
    const get = (s: string) => cache.get([bytes(s)], () => ++derived);
    expect(get("cert A")).to.equal(1);
    expect(get("cert A")).to.equal(1);
    expect(get("cert B")).to.equal(2);
    expect(derived).to.equal(2);
  });

  it("tells part boundaries and missing parts apart", () => {
    const cache = new ContentCache<string>(8);
    expect(cache.get([bytes("ab"), bytes("c")], () => "ab|c")).to.equal("ab|c");
    expect(cache.get([bytes("a"), bytes("bc")], () => "a|bc")).to.equal("a|bc");
    expect(cache.get([bytes("abc"), undefined], () => "abc|-")).to.equal("abc|-");
    expect(cache.get([bytes("abc"), bytes("")], () => "abc|''")).to.equal("abc|''");
  });

  it("keeps at most its capacity, dropping the least recently used", () => {
    const cache = new ContentCache<string>(2);
    const get = (s: string) => cache.get([bytes(s)], () => `${s}#${cache.size}`);
    get("a");
    get("b");
    get("a"); // a is now the most recent
    get("c"); // evicts b
    expect(cache.size).to.equal(2);
    expect(get("a")).to.equal("a#0");
    expect(get("b")).to.equal("b#2");
  });

  it("takes what is known without deriving it, and keeps the capacity doing so", () => {
    const cache = new ContentCache<boolean>(2);
    cache.set([bytes("leaf"), bytes("ca")], true);
    expect(cache.get([bytes("leaf"), bytes("ca")], () => false)).to.equal(true);
    cache.set([bytes("x")], false);
    cache.set([bytes("y")], false);
    expect(cache.size).to.equal(2);
    expect(cache.get([bytes("leaf"), bytes("ca")], () => false)).to.equal(false);
  });

  it("caches nothing when deriving throws", () => {
    const cache = new ContentCache<string>(2);
    expect(() => cache.get([bytes("bad")], () => { throw new Error("unparsable"); })).to.throw("unparsable");
    expect(cache.size).to.equal(0);
  });
});
