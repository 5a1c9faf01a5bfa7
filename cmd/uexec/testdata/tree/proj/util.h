int triangle(int n);
