import { parseVariableQuery } from '../../src/variables';

describe('parseVariableQuery', () => {
  it('reads the function form', () => {
    expect(parseVariableQuery('terms(service_name)')).toEqual({ find: 'terms', field: 'service_name', size: 100 });
    expect(parseVariableQuery(' terms( attributes.http.method , 5 ) ')).toEqual({ find: 'terms', field: 'attributes.http.method', size: 5 });
    expect(parseVariableQuery('fields')).toEqual({ find: 'fields' });
  });

  it('reads the JSON form, with an optional query', () => {
    expect(parseVariableQuery('{"find":"terms","field":"service_name","size":20,"query":"severity_text:ERROR"}')).toEqual({
      find: 'terms',
      field: 'service_name',
      size: 20,
      query: 'severity_text:ERROR',
    });
    expect(parseVariableQuery('{"find":"fields","aggregatable":true}')).toEqual({ find: 'fields', aggregatable: true });
  });

  it('explains what it cannot read', () => {
    expect(() => parseVariableQuery('{"find":"terms"}')).toThrow(/needs/);
    expect(() => parseVariableQuery('{not json')).toThrow(/not valid JSON/);
    expect(() => parseVariableQuery('values(x)')).toThrow(/unknown variable query/);
  });
});
