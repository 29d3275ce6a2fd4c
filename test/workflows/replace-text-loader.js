/**
 * A webpack loader for tests that bundle the workflow code with one source text changed (e.g. a schema default),
 * to replay recorded histories against "tomorrow's" code. Fails the bundle when the text is not there, so the
 * test cannot pass by changing nothing.
 */
module.exports = function replaceText(source) {
  const { from, to } = this.getOptions();
  if (!source.includes(from))
    throw new Error(`replace-text-loader: ${JSON.stringify(from)} not found in ${this.resourcePath}`);
  return source.split(from).join(to);
};
